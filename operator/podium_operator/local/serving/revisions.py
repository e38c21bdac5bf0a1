"""What KServe makes of an InferenceService, as pure functions: its revisions, the traffic split, the status.

The controller calls :func:`plan` with the object, the predictor processes it runs (:class:`Instance` →
:class:`State`) and what it remembers (:class:`Memory`); it gets back the processes to run, the router's
weights (ready processes only), what to mirror and the status to write. Two modes, as KServe has them:

- **Knative**: a new revision ``<isvc>-predictor-0000N`` whenever the predictor (less
  ``canaryTrafficPercent``) changes. With ``canaryTrafficPercent`` N and a ``latestRolledoutRevision``, the
  latest *ready* revision gets N% and the rolled-out one (tag ``prev``) the rest; otherwise the latest ready
  revision gets 100%, and once it does it becomes ``latestRolledoutRevision`` (the old one
  ``previousRolledoutRevision``). A revision that never gets ready never gets traffic.
- **Standard**: the stable predictor (named by ``predictor.name``, else ``<isvc>-predictor``) and one
  predictor per ``spec.canary[]`` entry (merged over the stable one); a canary gets its percent once ready,
  the stable the rest. A predictor is a process per model: renaming a canary to stable (promotion) keeps
  its process; a changed stable model is a rolling update (the old process serves until the new is ready).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

STARTING, READY, FAILED = "Starting", "Ready", "Failed"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
MIRROR_ANNOTATION = "podium.dev/mirror"
MODES = ("Standard", "Knative")


@dataclass(frozen=True)
class Model:
    """What a predictor process is made of; equal models are the same process."""

    name: str  # the model name on the V1/V2 paths: the InferenceService's
    storage_uri: str
    protocol: str = "v1"
    env: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        text = json.dumps([self.name, self.storage_uri, self.protocol, self.env])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def submission(self) -> str:
        return dict(self.env).get("PODIUM_SUBMISSION", "")


@dataclass(frozen=True)
class Instance:
    """A predictor process: a revision's name and its model (ids are stable across plans)."""

    revision: str
    model: Model

    @property
    def id(self) -> str:
        return f"{self.revision}/{self.model.key}"


@dataclass(frozen=True)
class State:
    """Where a predictor process is: ``Starting``, ``Ready`` (``url`` answers) or ``Failed`` (why)."""

    phase: str = STARTING
    url: str | None = None
    message: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class Memory:
    """What the controller keeps between plans: Knative's revisions (with their templates), the process
    that served Standard's stable predictor last."""

    revisions: tuple[tuple[Instance, str], ...] = ()  # Knative, oldest first: (revision, template digest)
    stable: Instance | None = None  # Standard


@dataclass(frozen=True)
class Plan:
    instances: tuple[Instance, ...]  # the processes to run (others are drained and stopped)
    weights: Mapping[str, int]  # instance id -> percent, ready instances only
    mirror: tuple[str, str] | None  # (stable instance id, shadow instance id) while mirroring
    status: dict[str, Any]
    memory: Memory
    shadow_submission: str = ""
    revisions: Mapping[str, str] = field(default_factory=dict)  # instance id -> revision name (metric labels)


def deployment_mode(isvc: Mapping[str, Any]) -> str:
    mode = (isvc.get("metadata", {}).get("annotations") or {}).get(MODE_ANNOTATION, "Standard")
    return {"Serverless": "Knative", "RawDeployment": "Standard"}.get(mode, mode)


def model_of(name: str, predictor: Mapping[str, Any]) -> Model:
    model = predictor.get("model") or {}
    env = tuple((str(e.get("name")), str(e.get("value", ""))) for e in model.get("env") or [] if e.get("name"))
    return Model(name, str(model.get("storageUri") or ""), str(model.get("protocolVersion") or "v1"), env)


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` (mappings recursively; lists and scalars replaced)."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = merged(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return out


def plan(isvc: Mapping[str, Any], states: Mapping[str, State], memory: Memory, *, url: str, now: str) -> Plan:
    """The processes, split and status for ``isvc`` given its processes' ``states`` (by instance id)."""
    if deployment_mode(isvc) == "Knative":
        return _knative(isvc, states, memory, url, now)
    return _standard(isvc, states, memory, url, now)


# --- Knative -------------------------------------------------------------------------------------------


def knative_revisions(isvc: Mapping[str, Any], known: Sequence[tuple[Instance, str]]) -> tuple[tuple[Instance, str], ...]:
    """``known`` plus a new revision when the predictor template changed (or there is none yet)."""
    name = isvc["metadata"]["name"]
    predictor = dict(isvc.get("spec", {}).get("predictor") or {})
    predictor.pop("canaryTrafficPercent", None)
    digest = hashlib.sha256(json.dumps(predictor, sort_keys=True).encode()).hexdigest()
    if known and known[-1][1] == digest:
        return tuple(known)
    return (*known, (Instance(f"{name}-predictor-{len(known) + 1:05d}", model_of(name, predictor)), digest))


def knative_traffic(canary: int | None, latest_ready: str | None, rolled_out: str | None) -> list[dict[str, Any]]:
    """Knative's resolved traffic targets, as KServe configures them."""
    if latest_ready is None:
        return []
    if canary is not None and rolled_out:
        return [{"revisionName": latest_ready, "percent": canary, "latestRevision": True},
                {"revisionName": rolled_out, "percent": 100 - canary, "latestRevision": False, "tag": "prev"}]
    return [{"revisionName": latest_ready, "percent": 100, "latestRevision": True}]


def _knative(isvc: Mapping[str, Any], states: Mapping[str, State], memory: Memory, url: str, now: str) -> Plan:
    revisions = knative_revisions(isvc, memory.revisions)
    by_name = {instance.revision: instance for instance, _ in revisions}
    latest = revisions[-1][0]
    ready = [i for i, _ in revisions if _phase(states, i) == READY]
    latest_ready = ready[-1].revision if ready else None
    previous = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
    rolled_out, before = previous.get("latestRolledoutRevision"), previous.get("previousRolledoutRevision")
    if rolled_out not in by_name:
        rolled_out = before = None
    canary = (isvc.get("spec", {}).get("predictor") or {}).get("canaryTrafficPercent")
    traffic = knative_traffic(canary, latest_ready, rolled_out)
    totals: dict[str, int] = {}
    for target in traffic:
        totals[target["revisionName"]] = totals.get(target["revisionName"], 0) + target["percent"]
    if latest_ready is not None and totals.get(latest_ready) == 100 and latest_ready != rolled_out:
        rolled_out, before = latest_ready, rolled_out
    for target in traffic:
        if target.get("tag"):
            target["url"] = states.get(by_name[target["revisionName"]].id, State()).url or url
    running = [by_name[name] for name in totals] + ([latest] if latest.revision not in totals else [])
    weights = {by_name[n].id: p for n, p in totals.items() if p > 0 and _phase(states, by_name[n]) == READY}
    mirror = None
    stable = by_name.get(rolled_out) if rolled_out else None
    if _mirroring(isvc) and stable is not None and latest is not stable and _phase(states, latest) == READY:
        mirror = (stable.id, latest.id)
    predictor = {"latestCreatedRevision": latest.revision, "latestReadyRevision": latest_ready,
                 "latestRolledoutRevision": rolled_out, "previousRolledoutRevision": before,
                 "traffic": traffic, "url": url, "address": {"url": url}}
    latest_phase = _phase(states, latest)
    route = (("True", "", "") if traffic else ("Unknown", "RevisionMissing", "no revision is ready yet"))
    config = {READY: ("True", "", ""), STARTING: ("Unknown", "Deploying", f"revision {latest.revision} is starting"),
              FAILED: ("False", "RevisionFailed", f"revision {latest.revision} failed: "
                       f"{states.get(latest.id, State()).message}")}[latest_phase]
    predictor_ready = route if route[0] != "True" else config
    conditions = {"PredictorRouteReady": route, "PredictorConfigurationReady": config,
                  "LatestDeploymentReady": config, "PredictorReady": predictor_ready,
                  "IngressReady": route if route[0] == "True" else ("False", "PredictorNotReady", route[2])}
    status = _status(isvc, conditions, now, url, {"predictor": _compact(predictor)},
                     _model_status([latest], states, serving=bool(weights), now=now))
    return Plan(tuple(dict.fromkeys(running)), weights, mirror, status, Memory(revisions=revisions),
                latest.model.submission if mirror else "", {i.id: i.revision for i, _ in revisions})


# --- Standard ------------------------------------------------------------------------------------------


def stable_instance(isvc: Mapping[str, Any]) -> Instance:
    name = isvc["metadata"]["name"]
    predictor = isvc.get("spec", {}).get("predictor") or {}
    return Instance(str(predictor.get("name") or f"{name}-predictor"), model_of(name, predictor))


def canaries(isvc: Mapping[str, Any]) -> list[tuple[Instance, int]]:
    """Each ``spec.canary[]`` entry's predictor (merged over the stable one) and its traffic percent."""
    name = isvc["metadata"]["name"]
    spec = isvc.get("spec", {})
    stable = {k: v for k, v in (spec.get("predictor") or {}).items() if k != "name"}
    out = []
    for index, entry in enumerate(spec.get("canary") or []):
        predictor = merged(stable, entry.get("predictor") or {})
        revision = str(predictor.get("name") or f"{name}-canary-{index}")
        out.append((Instance(revision, model_of(name, predictor)), int(entry.get("trafficPercent") or 0)))
    return out


def _standard(isvc: Mapping[str, Any], states: Mapping[str, State], memory: Memory, url: str, now: str) -> Plan:
    stable = stable_instance(isvc)
    serving = stable
    old = memory.stable
    if _phase(states, stable) != READY and old is not None and old != stable and _phase(states, old) == READY:
        serving = old  # a rolling update: the old process serves until the new one is ready
    listed = canaries(isvc)
    ready_canaries = [(c, p) for c, p in listed if _phase(states, c) == READY]
    weights: dict[str, int] = {c.id: p for c, p in ready_canaries if p > 0}
    canary_total = sum(weights.values())
    if _phase(states, serving) == READY and canary_total < 100:
        weights[serving.id] = 100 - canary_total
    mirror = None
    if _mirroring(isvc) and len(listed) == 1 and ready_canaries and _phase(states, serving) == READY:
        mirror = (serving.id, listed[0][0].id)
    stable_phase = _phase(states, serving)
    predictor_ready = {READY: ("True", "", ""),
                       STARTING: ("False", "MinimumReplicasUnavailable", f"predictor {stable.revision} is starting"),
                       FAILED: ("False", "ModelLoadFailed", states.get(serving.id, State()).message)}[stable_phase]
    conditions = {"PredictorReady": predictor_ready,
                  "IngressReady": ("True", "", "") if stable_phase == READY
                  else ("False", "PredictorNotReady", "the predictor is not ready")}
    if listed:
        all_ready = len(ready_canaries) == len(listed)
        conditions["CanaryPredictorReady"] = (("True", "AllCanariesReady", "") if all_ready else
                                              ("False", "CanariesNotReady", "canaries are not ready"))
    # Each canary's model status in its entry (a failed candidate is not the stable model failing).
    extra = {"canaryStatuses": [{"name": c.revision, "ready": _phase(states, c) == READY, "trafficPercent": p,
                                 "modelStatus": _model_status([c], states, serving=_phase(states, c) == READY,
                                                              now=now)}
                                for c, p in listed]} if listed else {}
    components = {"predictor": {"url": url, "address": {"url": url}}}
    status = _status(isvc, conditions, now, url, components,
                     _model_status([stable], states, serving=stable_phase == READY, now=now), extra)
    instances = (stable, *([serving] if serving != stable else []), *(c for c, _ in listed))
    memory = replace(memory, stable=serving if _phase(states, stable) != READY else stable)
    return Plan(tuple(dict.fromkeys(instances)), weights, mirror, status, memory,
                listed[0][0].model.submission if mirror else "", {i.id: i.revision for i in instances})


# --- Status --------------------------------------------------------------------------------------------


def _phase(states: Mapping[str, State], instance: Instance) -> str:
    state = states.get(instance.id)
    return state.phase if state is not None else STARTING


def _mirroring(isvc: Mapping[str, Any]) -> bool:
    return (isvc.get("metadata", {}).get("annotations") or {}).get(MIRROR_ANNOTATION) == "true"


def _compact(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _model_status(targets: Sequence[Instance], states: Mapping[str, State], *, serving: bool,
                  now: str) -> dict[str, Any]:
    phases = [_phase(states, t) for t in targets]
    failed = [t for t, p in zip(targets, phases, strict=True) if p == FAILED]
    copies = {"totalCopies": phases.count(READY), "failedCopies": len(failed)}
    active = "Loaded" if serving else ("FailedToLoad" if failed else "Loading")
    if failed:
        state = states[failed[0].id]
        info = _compact({"reason": "ModelLoadFailed", "message": state.message, "exitCode": state.exit_code,
                         "modelRevisionName": failed[0].revision, "time": now})
        return {"transitionStatus": "BlockedByFailedLoad", "copies": copies, "lastFailureInfo": info,
                "states": {"activeModelState": active, "targetModelState": "FailedToLoad"}}
    if all(p == READY for p in phases):
        return {"transitionStatus": "UpToDate", "copies": copies,
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}}
    return {"transitionStatus": "InProgress", "copies": copies,
            "states": {"activeModelState": active, "targetModelState": "Loading"}}


def _status(isvc: Mapping[str, Any], conditions: Mapping[str, tuple[str, str, str]], now: str, url: str,
            components: Mapping[str, Any], model_status: Mapping[str, Any],
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole status; a condition keeps its ``lastTransitionTime`` while its status stays the same."""
    values = dict(conditions)
    not_ready = [v for k, v in values.items() if k in ("PredictorReady", "IngressReady") and v[0] != "True"]
    values["Ready"] = not_ready[0] if not_ready else ("True", "", "")
    before = {c.get("type"): c for c in (isvc.get("status") or {}).get("conditions") or []}
    listed = []
    for kind in sorted(values):
        status, reason, message = values[kind]
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        listed.append(_compact({"type": kind, "status": status, "reason": reason or None,
                                "message": message or None, "lastTransitionTime": since or now}))
    old = isvc.get("status") or {}
    model_status = _seen_since(old.get("modelStatus"), model_status)
    extra = dict(extra or {})
    if "canaryStatuses" in extra:
        before_canary = {c.get("name"): c.get("modelStatus") for c in old.get("canaryStatuses") or []}
        extra["canaryStatuses"] = [{**c, "modelStatus": _seen_since(before_canary.get(c["name"]), c["modelStatus"])}
                                   for c in extra["canaryStatuses"]]
    meta = isvc.get("metadata", {})
    return {"conditions": listed, "observedGeneration": int(meta.get("generation") or 1), "url": url,
            "address": {"url": url}, "deploymentMode": deployment_mode(isvc), "components": dict(components),
            "modelStatus": model_status, **extra}


def _seen_since(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """``new``, with the time of ``old``'s ``lastFailureInfo`` when it is the same failure (when it was seen)."""
    out = dict(new)
    before, info = (old or {}).get("lastFailureInfo") or {}, out.get("lastFailureInfo")
    if info and before.get("time") and {**before, "time": ""} == {**info, "time": ""}:
        out["lastFailureInfo"] = {**info, "time": before["time"]}
    return out


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch
