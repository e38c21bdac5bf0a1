"""The InferenceService a ModelDeployment asks for (pure), for KServe's two rollout backends.

One routing intent (:class:`Routing`: a stable model, maybe a candidate at some percent, maybe mirrored)
becomes either a **Knative** spec (the candidate is the predictor's model with ``canaryTrafficPercent``;
the stable model lives on as KServe's last rolled-out revision) or a **Standard** spec (the candidate is
``spec.canary[0]``; promotion renames the predictor). KServe's webhook rewrites specs, so updates compare
only :func:`owned_fields`, never whole specs. :func:`observe` reads back what KServe reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from podium.api.common import GROUP
from podium.api.meta import condition_is_true
from podium_operator.reconcile.names import MANAGED_BY, owner_reference

API_VERSION = "serving.kserve.io/v1beta1"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
MIRROR_ANNOTATION = f"{GROUP}/mirror"  # the candidate gets a copy of the stable model's traffic (shadow)
DEPLOYMENT_LABEL = f"{GROUP}/deployment"
MODEL_FORMAT = "podium"
RUNTIME = "podium"  # the chart's ClusterServingRuntime
PREDICTOR_SERVICE_ACCOUNT = "podium-predictor"  # its Secret carries the serving.kserve.io/s3-* annotations
CONTAINER = "kserve-container"
Mode = Literal["Standard", "Knative"]


@dataclass(frozen=True)
class Artifact:
    """One servable submission: what the predictor needs to load it and label its answers."""

    submission: str
    version: int | None
    storage_uri: str
    task: str = "classification"
    class_labels: tuple[Any, ...] | None = None

    @property
    def revision(self) -> str:
        """A DNS label naming this model's predictor (Standard mode), distinct per stored artifact."""
        digest = hashlib.sha256(self.storage_uri.encode()).hexdigest()[:6]
        return f"v{self.version}-{digest}" if self.version is not None else f"m-{digest}"

    def env(self) -> list[dict[str, str]]:
        env = [{"name": "PODIUM_SUBMISSION", "value": self.submission},
               {"name": "PODIUM_VERSION", "value": "" if self.version is None else str(self.version)},
               {"name": "PODIUM_TASK", "value": self.task}]
        if self.class_labels is not None:
            env.append({"name": "PODIUM_CLASS_LABELS", "value": json.dumps(list(self.class_labels))})
        return env


@dataclass(frozen=True)
class Routing:
    """What should receive traffic: ``stable`` gets 100 - ``percent``; ``mirror`` copies its traffic to the candidate."""

    stable: Artifact
    candidate: Artifact | None = None
    percent: int = 0
    mirror: bool = False


@dataclass(frozen=True)
class Runtime:
    mode: Mode
    replicas: int
    cpu: str
    memory: str
    protocol: str = "v1"


def _model(artifact: Artifact, runtime: Runtime) -> dict[str, Any]:
    quantities = {"cpu": runtime.cpu, "memory": runtime.memory}
    return {
        "name": CONTAINER,  # required in spec.canary[] (a Container there); KServe's own name elsewhere
        "modelFormat": {"name": MODEL_FORMAT},
        "runtime": RUNTIME,
        "protocolVersion": runtime.protocol,
        "storageUri": artifact.storage_uri,
        "env": artifact.env(),
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
    }


def build(owner: dict[str, Any], routing: Routing, runtime: Runtime) -> dict[str, Any]:
    """The whole InferenceService for ``routing`` (name and namespace of the ModelDeployment ``owner``)."""
    meta = owner["metadata"]
    annotations: dict[str, str] = {MODE_ANNOTATION: runtime.mode}
    if routing.mirror and routing.candidate is not None:
        annotations[MIRROR_ANNOTATION] = "true"
    predictor: dict[str, Any] = {"minReplicas": runtime.replicas, "serviceAccountName": PREDICTOR_SERVICE_ACCOUNT}
    spec: dict[str, Any] = {"predictor": predictor}
    candidate = routing.candidate
    if runtime.mode == "Knative":
        # The candidate is the new revision; KServe keeps the last rolled-out one (the stable model) as "prev".
        predictor["model"] = _model(candidate or routing.stable, runtime)
        if candidate is not None:
            predictor["canaryTrafficPercent"] = routing.percent
    else:
        predictor["name"] = routing.stable.revision
        predictor["model"] = _model(routing.stable, runtime)
        if candidate is not None:
            spec["canary"] = [{"trafficPercent": routing.percent,
                               "predictor": {"name": candidate.revision, "minReplicas": 1,
                                             "model": _model(candidate, runtime)}}]
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "labels": {**MANAGED_BY, DEPLOYMENT_LABEL: meta["name"]},
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }


_MODEL_FIELDS = ("modelFormat", "runtime", "protocolVersion", "storageUri", "env", "resources")
_PREDICTOR_FIELDS = ("name", "minReplicas", "serviceAccountName", "canaryTrafficPercent")


def _owned_model(model: dict[str, Any] | None) -> dict[str, Any]:
    model = model or {}
    owned = {key: model.get(key) for key in _MODEL_FIELDS}
    owned["modelFormat"] = {"name": (model.get("modelFormat") or {}).get("name")}
    resources = model.get("resources") or {}
    owned["resources"] = {kind: {key: (resources.get(kind) or {}).get(key) for key in ("cpu", "memory")}
                          for kind in ("requests", "limits")}  # defaults may add others (ephemeral-storage)
    return owned


def _owned_predictor(predictor: dict[str, Any] | None) -> dict[str, Any]:
    predictor = predictor or {}
    return {**{key: predictor.get(key) for key in _PREDICTOR_FIELDS}, "model": _owned_model(predictor.get("model"))}


def owned_fields(isvc: dict[str, Any]) -> dict[str, Any]:
    """The fields Podium sets (everything KServe's webhook adds or rewrites is left out of comparisons)."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    spec = isvc.get("spec") or {}
    return {
        "annotations": {key: annotations.get(key) for key in (MODE_ANNOTATION, MIRROR_ANNOTATION)},
        "labels": {key: ((isvc.get("metadata") or {}).get("labels") or {}).get(key) for key in
                   (*MANAGED_BY, DEPLOYMENT_LABEL)},
        "predictor": _owned_predictor(spec.get("predictor")),
        "canary": [{"trafficPercent": c.get("trafficPercent"), "predictor": _owned_predictor(c.get("predictor"))}
                   for c in spec.get("canary") or []],
    }


def update_patch(observed: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch that makes ``observed`` hold ``desired``'s owned fields; None when it already does.

    Absent owned fields become ``null`` so the merge removes them (``canaryTrafficPercent`` on promotion,
    ``spec.canary`` on promotion or rollback, the mirror annotation after a shadow).
    """
    if owned_fields(observed) == owned_fields(desired):
        return None
    spec = desired["spec"]
    predictor = spec["predictor"]
    meta = desired["metadata"]
    return {
        "metadata": {"labels": meta["labels"],
                     "annotations": {MODE_ANNOTATION: meta["annotations"][MODE_ANNOTATION],
                                     MIRROR_ANNOTATION: meta["annotations"].get(MIRROR_ANNOTATION)}},
        "spec": {
            "predictor": {**{key: predictor.get(key) for key in _PREDICTOR_FIELDS},
                          "model": {key: predictor["model"][key] for key in _MODEL_FIELDS}},
            "canary": spec.get("canary"),
        },
    }


@dataclass(frozen=True)
class Observed:
    """What KServe reports about the InferenceService, as far as a rollout needs it."""

    exists: bool
    ready: bool = False  # Ready=True for the current generation
    candidate_ready: bool = False
    candidate_percent: int | None = None  # the percent the candidate actually gets (None: no candidate)
    url: str | None = None
    failure: str | None = None  # modelStatus.lastFailureInfo, e.g. a model that cannot load
    message: str = ""


def _current(isvc: dict[str, Any]) -> bool:
    generation = (isvc.get("metadata") or {}).get("generation")
    observed = (isvc.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and observed >= generation)


def _failure(status: dict[str, Any], names: Sequence[str] = ()) -> str | None:
    statuses = [status.get("modelStatus") or {}] + [c.get("modelStatus") or {} for c in status.get("canaryStatuses") or []
                                                    if not names or c.get("name") in names]
    for model_status in statuses:
        info = model_status.get("lastFailureInfo") or {}
        if info.get("reason"):
            return f"{info['reason']}: {info.get('message', '')}".strip()
    return None


def observe(isvc: dict[str, Any] | None, routing: Routing, mode: Mode) -> Observed:
    """Read ``isvc``'s status against ``routing`` (is the candidate up, what share does it really get)."""
    if isvc is None:
        return Observed(exists=False, message="the InferenceService does not exist yet")
    status = isvc.get("status") or {}
    current = _current(isvc)
    ready = current and condition_is_true(isvc, "Ready")
    url = status.get("url") or (status.get("address") or {}).get("url")
    message = next((c.get("message", "") for c in status.get("conditions") or []
                    if c.get("type") == "Ready" and c.get("status") != "True"), "")
    candidate = routing.candidate
    if candidate is None or not current:
        return Observed(exists=True, ready=ready, url=url, failure=_failure(status), message=message)
    if mode == "Knative":
        predictor = (status.get("components") or {}).get("predictor") or {}
        latest = [t for t in predictor.get("traffic") or [] if t.get("latestRevision")]
        up = bool(predictor.get("latestReadyRevision")) and (
            predictor.get("latestReadyRevision") == predictor.get("latestCreatedRevision"))
        percent = int(latest[0].get("percent") or 0) if latest and up else 0
    else:
        entries = [c for c in status.get("canaryStatuses") or [] if c.get("name") == candidate.revision]
        up = bool(entries) and bool(entries[0].get("ready"))
        percent = int(entries[0].get("trafficPercent") or 0) if entries and up else 0
    return Observed(exists=True, ready=ready, candidate_ready=up, candidate_percent=percent, url=url,
                    failure=_failure(status, [candidate.revision]), message=message)


def settle(observed: dict[str, Any] | None, desired: dict[str, Any], mode: Mode) -> dict[str, Any]:
    """Knative: keep ``canaryTrafficPercent: 0`` while a model is restored after a candidate (a rollback, a shadow
    cleared) until the restored revision is ready.

    Removing the field sends 100% of the traffic to the latest *ready* revision, which until then is the
    candidate's: a rolled-back model would get everything for a while. With 0, KServe keeps it all on the last
    rolled-out revision (the stable model). A promotion (same model, its revision ready) removes the field at once.
    """
    predictor = desired["spec"]["predictor"]
    if mode != "Knative" or observed is None or "canaryTrafficPercent" in predictor:
        return desired
    observed_predictor = (observed.get("spec") or {}).get("predictor") or {}
    if observed_predictor.get("canaryTrafficPercent") is None:
        return desired  # no candidate ran: KServe keeps the ready revision serving until the new one is up
    components = ((observed.get("status") or {}).get("components") or {}).get("predictor") or {}
    latest_up = _current(observed) and bool(components.get("latestReadyRevision")) and (
        components.get("latestReadyRevision") == components.get("latestCreatedRevision"))
    if latest_up and _owned_model(observed_predictor.get("model")) == _owned_model(predictor["model"]):
        return desired
    return {**desired, "spec": {**desired["spec"], "predictor": {**predictor, "canaryTrafficPercent": 0}}}
