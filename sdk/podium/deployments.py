"""Serve a playground's submissions: the ModelDeployment it owns, its rollout, and predictions over HTTP.

    pg.deploy_model(3)                  # leaderboard version 3, served as a KServe InferenceService
    pg.update_runtime_model(4)          # a canary swap per spec.rollout, waiting until it is promoted
    pg.get_deployment()                 # DeploymentView: stable/canary, traffic, url, phase, history
    pg.predict(X[:5], probabilities=True)

The functions take the playground (anything with ``api``, ``namespace``, ``name`` and ``progress``), so the
client's methods are one-liners. Pure parts (manifests, status view, payloads) are separate from the I/O.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from podium import kube
from podium.api import API_VERSION, GROUP, MODEL_DEPLOYMENT, VERSION
from podium.api.deployment import RolloutPolicy, RuntimeSpec
from podium.errors import AlreadyExists, InvalidConfig, PodiumError, ResourceNotFound, WaitTimeout
from podium.progress import Status

PLURAL = MODEL_DEPLOYMENT.plural
Protocols = ("v1", "v2")


class Playground(Protocol):
    name: str
    namespace: str
    api: Any
    progress: bool | None


class DeploymentError(PodiumError):
    """A ModelDeployment is missing, not serving, rolled back, or its predictor refused a request."""


# --- manifests (pure) -----------------------------------------------------------------------------------
def target(version: int | str | None, submission: str | None, *, field_name: str = "version") -> dict[str, Any]:
    """``{"version": 3, "submission": None}``: the merge-patch form (the other one is cleared). A string in
    place of the version is a submission's name: ``pg.shadow("logreg")``."""
    if isinstance(version, str) and submission is None:
        version, submission = None, version
    if (version is None) == (submission is None) or isinstance(version, str | bool):
        raise InvalidConfig("give exactly one of a leaderboard version or a submission name", field=field_name,
                            hint="e.g. version=3, or submission='logreg'")
    return {"version": version, "submission": submission}


def _wire(value: RolloutPolicy | RuntimeSpec | dict[str, Any] | None, model: type[RolloutPolicy | RuntimeSpec],
          name: str) -> dict[str, Any] | None:
    """A camelCase dict checked by the API model (a typo or a bad value fails here, naming the field)."""
    if value is None:
        return None
    try:
        checked = value if isinstance(value, model) else model.model_validate(value)
    except ValueError as error:
        raise InvalidConfig(f"{name} is invalid: {' '.join(str(error).split())}", field=f"spec.{name}",
                            hint=f"see podium.api.deployment.{model.__name__}") from None
    return checked.to_wire()


def manifest(playground: str, name: str, *, version: int | str | None = None, submission: str | None = None,
             rollout: Any = None, runtime: Any = None) -> dict[str, Any]:
    """The ModelDeployment ``name`` serving ``version`` (or ``submission``) of ``playground``."""
    spec: dict[str, Any] = {"playground": playground,
                            **{k: v for k, v in target(version, submission).items() if v is not None}}
    for key, value in (("rollout", _wire(rollout, RolloutPolicy, "rollout")),
                       ("runtime", _wire(runtime, RuntimeSpec, "runtime"))):
        if value is not None:
            spec[key] = value
    return {"apiVersion": API_VERSION, "kind": MODEL_DEPLOYMENT.kind, "metadata": {"name": name}, "spec": spec}


def update_patch(version: int | str | None = None, submission: str | None = None, *, rollout: Any = None,
                 runtime: Any = None) -> dict[str, Any]:
    """The merge patch that points an existing deployment at another target (and, given, a new policy)."""
    spec: dict[str, Any] = target(version, submission)
    for key, value in (("rollout", _wire(rollout, RolloutPolicy, "rollout")),
                       ("runtime", _wire(runtime, RuntimeSpec, "runtime"))):
        if value is not None:
            spec[key] = value
    return {"spec": spec}


def shadow_patch(version: int | str | None = None, submission: str | None = None) -> dict[str, Any]:
    """Set ``spec.shadow`` to that candidate, or clear it when neither is given."""
    if version is None and submission is None:
        return {"spec": {"shadow": None}}
    return {"spec": {"shadow": {k: v for k, v in target(version, submission, field_name="shadow").items()
                                if v is not None}}}


# --- the status, as a view (pure) -----------------------------------------------------------------------
@dataclass(frozen=True)
class DeploymentView:
    name: str
    playground: str
    target: str  # what the spec asks for: "version 3" or "submission logreg"
    phase: str  # Ready, Progressing, RollingBack, Failed, or Pending before the operator's first status
    url: str | None
    inference_service: str
    protocol: str
    stable: dict[str, Any] | None
    canary: dict[str, Any] | None
    canary_percent: int | None
    traffic: list[dict[str, Any]]
    analysis: dict[str, Any] | None
    shadow: dict[str, Any] | None
    rejected: dict[str, Any] | None
    message: str
    up_to_date: bool  # the status describes the current spec (observedGeneration)
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _named(served: dict[str, Any] | None, spec: dict[str, Any]) -> bool:
    """``served`` (stable, rejected, ...) is what ``spec`` targets."""
    if not served:
        return False
    if spec.get("version") is not None:
        return bool(served.get("version") == spec["version"])
    return bool(served.get("submission") == spec.get("submission"))


def view(obj: dict[str, Any]) -> DeploymentView:
    """The object's status as the operator wrote it (read as is: an operator newer than this SDK may add fields)."""
    spec, status, metadata = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    generation = metadata.get("generation")
    wanted = f"version {spec['version']}" if spec.get("version") is not None else f"submission {spec.get('submission')}"
    return DeploymentView(
        name=metadata.get("name", ""), playground=spec.get("playground", ""), target=wanted,
        phase=status.get("phase") or "Pending", url=status.get("url"),
        inference_service=status.get("inferenceService") or metadata.get("name", ""),
        protocol=(spec.get("runtime") or {}).get("protocol", "v1"), stable=status.get("stable"),
        canary=status.get("canary"), canary_percent=status.get("canaryPercent"), traffic=status.get("traffic") or [],
        analysis=status.get("analysis"), shadow=status.get("shadow"), rejected=status.get("rejected"),
        message=status.get("message") or "",
        up_to_date=generation is None or (status.get("observedGeneration") or 0) >= generation,
        history=status.get("history") or [])


def rollout_outcome(obj: dict[str, Any]) -> str | None:
    """``"done"`` once the spec's target serves all traffic; None while it rolls out. Raises when it failed."""
    shown, spec = view(obj), obj.get("spec") or {}
    if not shown.up_to_date:
        return None
    if shown.rejected and _named(shown.rejected, spec):
        reason = f"{shown.rejected.get('reason')}: {shown.rejected.get('message') or shown.message}".rstrip(": ")
        raise DeploymentError(f"{shown.target} was rolled back ({reason})", field=f"modeldeployment {shown.name}",
                              hint="fix the candidate and deploy another submission; the stable model still serves")
    if shown.phase == "Failed":
        raise DeploymentError(f"rollout of {shown.target} failed: {shown.message or 'no reason given'}",
                              field=f"modeldeployment {shown.name}", hint="see `kubectl describe mdep "
                              f"{shown.name}` and the predictor's logs")
    if shown.phase == "Ready" and _named(shown.stable, spec) and not shown.canary:
        return "done"
    return None


def progress_text(shown: DeploymentView) -> str:
    """One line: phase, the canary's share and stage, the last analysis verdict."""
    parts = [shown.phase]
    if shown.canary:
        parts.append(f"canary {shown.canary.get('submission')} at {shown.canary_percent or 0}%")
    if shown.analysis:
        parts.append(f"analysis {shown.analysis.get('verdict')}"
                     + (f" ({'; '.join(shown.analysis.get('reasons') or [])})" if shown.analysis.get("reasons") else ""))
    if shown.message:
        parts.append(shown.message)
    return ", ".join(parts)


# --- predictions: payloads (pure) -----------------------------------------------------------------------
_V2_TYPES = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}


def _rows(data: Any) -> pd.DataFrame | np.ndarray:
    if isinstance(data, pd.DataFrame):
        return data
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(1, -1)  # one row
    if array.ndim != 2 or not len(array):
        raise InvalidConfig(f"expected rows of features (2-d), got shape {array.shape}", field="data",
                            hint="pass a DataFrame, a 2-d array or a list of rows")
    return array


def _named_columns(frame: pd.DataFrame) -> bool:
    return not isinstance(frame.columns, pd.RangeIndex)


def _tensor(name: str, values: np.ndarray) -> dict[str, Any]:
    datatype = "FP32" if values.dtype == np.float32 else _V2_TYPES.get(values.dtype.kind, "BYTES")
    data = values.astype(str) if datatype == "BYTES" else values
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": data.ravel().tolist()}


def request_body(data: Any, protocol: str) -> dict[str, Any]:
    rows = _rows(data)
    if protocol == "v1":
        if isinstance(rows, pd.DataFrame):
            named = _named_columns(rows)
            records = rows.to_dict(orient="records") if named else rows.to_numpy().tolist()
            return {"instances": json.loads(json.dumps(records, default=_scalar))}
        return {"instances": rows.tolist()}
    if isinstance(rows, pd.DataFrame) and _named_columns(rows):
        return {"inputs": [_tensor(str(column), rows[column].to_numpy()) for column in rows.columns]}
    return {"inputs": [_tensor("input-0", np.asarray(rows.to_numpy() if isinstance(rows, pd.DataFrame) else rows))]}


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else str(value)


def decode(answer: dict[str, Any], protocol: str) -> tuple[list[Any], pd.DataFrame | None]:
    """The labels, and the probabilities (class-label columns) when the predictor sent them."""
    if protocol == "v1":
        probabilities, classes = answer.get("probabilities"), answer.get("classes")
        frame = pd.DataFrame(probabilities, columns=classes) if probabilities is not None else None
        return list(answer.get("predictions") or []), frame
    outputs = {output.get("name"): output for output in answer.get("outputs") or []}
    if "label" not in outputs:
        raise DeploymentError(f"the predictor's V2 answer has no 'label' output (outputs: {sorted(outputs)})")
    labels = list(outputs["label"].get("data") or [])
    found = outputs.get("probabilities")
    if found is None:
        return labels, None
    shape = found.get("shape") or [len(labels), -1]
    classes = json.loads((found.get("parameters") or {}).get("classes") or "null")
    return labels, pd.DataFrame(np.asarray(found.get("data"), dtype=float).reshape(shape), columns=classes)


def predict_path(inference_service: str, protocol: str) -> str:
    return (f"/v1/models/{inference_service}:predict" if protocol == "v1"
            else f"/v2/models/{inference_service}/infer")


def post(url: str, body: dict[str, Any], *, timeout: float = 60.0) -> dict[str, Any]:
    """POST JSON; a refusal is one line with the server's own message."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the deployment's URL)
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            parsed = json.loads(text)
            message = parsed.get("error") or parsed.get("detail") or text if isinstance(parsed, dict) else text
        except ValueError:
            message = text
        raise DeploymentError(f"the predictor answered {error.code} {error.reason}: {' '.join(str(message).split())}",
                              field="data" if 400 <= error.code < 500 else None,
                              hint="check the input's columns and types" if 400 <= error.code < 500
                              else "see the predictor's logs (`kubectl logs`)") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeploymentError(f"cannot reach the predictor at {url} ({reason})",
                              hint="check the deployment's status.url is reachable from here") from None


# --- the cluster --------------------------------------------------------------------------------------
def read(pg: Playground, name: str | None = None) -> dict[str, Any]:
    name = name or pg.name
    try:
        with kube.translated(pg.namespace):
            obj: dict[str, Any] = pg.api.get_namespaced_custom_object(GROUP, VERSION, pg.namespace, PLURAL, name)
    except ResourceNotFound:
        raise DeploymentError(f"no ModelDeployment {name} in namespace {pg.namespace}", field="name",
                              hint=f"deploy one first: pg.deploy_model(version) or `podium deploy {pg.name} "
                              "--version N`") from None
    return obj


def get_deployment(pg: Playground, name: str | None = None) -> DeploymentView:
    return view(read(pg, name))


def deploy(pg: Playground, version: int | str | None = None, *, submission: str | None = None, name: str | None = None,
           rollout: Any = None, runtime: Any = None, wait: bool = True, timeout: float = 600.0) -> DeploymentView:
    """Create the ModelDeployment (or point the existing one at this target); with ``wait``, until it is served."""
    name = name or pg.name
    body = manifest(pg.name, name, version=version, submission=submission, rollout=rollout, runtime=runtime)
    try:
        with kube.translated(pg.namespace):
            pg.api.create_namespaced_custom_object(GROUP, VERSION, pg.namespace, PLURAL, body,
                                                   field_validation="Strict")
    except AlreadyExists:
        return update(pg, version, submission=submission, name=name, rollout=rollout, runtime=runtime, wait=wait,
                      timeout=timeout)
    return wait_rollout(pg, name, timeout) if wait else get_deployment(pg, name)


def update(pg: Playground, version: int | str | None = None, *, submission: str | None = None, name: str | None = None,
           rollout: Any = None, runtime: Any = None, wait: bool = True, timeout: float = 600.0,
           progress: bool | None = None, on_change: Any = None) -> DeploymentView:
    """Point the deployment at another target: a canary swap per its rollout policy; with ``wait``, until done
    (``on_change`` is called with each new view: phase, traffic split, analysis)."""
    name = name or pg.name
    patch(pg, name, update_patch(version, submission, rollout=rollout, runtime=runtime))
    return wait_rollout(pg, name, timeout, progress=progress, on_change=on_change) if wait else get_deployment(pg, name)


def shadow(pg: Playground, version: int | str | None = None, *, submission: str | None = None,
           name: str | None = None) -> DeploymentView:
    """Mirror live traffic to this candidate (answers compared, never returned); no target: stop mirroring."""
    return view(patch(pg, name or pg.name, shadow_patch(version, submission)))


def patch(pg: Playground, name: str, body: dict[str, Any]) -> dict[str, Any]:
    read(pg, name)  # a missing deployment: the one-line error that says how to make one
    with kube.translated(pg.namespace):
        obj: dict[str, Any] = pg.api.patch_namespaced_custom_object(GROUP, VERSION, pg.namespace, PLURAL, name, body)
    return obj


def wait_rollout(pg: Playground, name: str, timeout: float = 600.0, *, progress: bool | None = None,
                 on_change: Any = None) -> DeploymentView:
    """Until the spec's target serves all traffic (a PodiumError if it was rolled back or failed).

    One LIST, then a WATCH; each change of the progress line goes to the status line and ``on_change``.
    """
    latest: dict[str, Any] = {}
    finished: list[str] = []
    deadline = time.monotonic() + timeout
    with Status(f"rolling out {name}", show=pg.progress if progress is None else progress) as line:
        def take(item: dict[str, Any]) -> None:
            if (item.get("metadata") or {}).get("name") != name:
                return
            latest["obj"] = item
            text = progress_text(view(item))
            if text != latest.get("text"):
                latest["text"] = text
                line.set(text)
                if on_change is not None:
                    on_change(view(item))
            if rollout_outcome(item):
                finished.append("done")

        with kube.translated(pg.namespace):
            done = kube.watch_until(pg.api, pg.namespace, PLURAL, take, lambda: bool(finished), deadline)
        if not done:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for the rollout of {name}: "
                              f"{latest.get('text', 'no status yet')}",
                              hint="wait longer (timeout=...), or `podium rollout status "
                              f"{pg.name} -w`")
        line.close("done")
    return view(latest["obj"])


def predict(pg: Playground, data: Any, *, protocol: str | None = None, probabilities: bool = False,
            name: str | None = None, timeout: float = 60.0) -> Any:
    """Labels for ``data`` (DataFrame, array or list of rows); with ``probabilities``, (labels, DataFrame)."""
    if protocol is not None and protocol not in Protocols:
        raise InvalidConfig(f"unknown protocol {protocol!r}", field="protocol", hint="use 'v1' or 'v2'")
    shown = get_deployment(pg, name)
    if not shown.url or not shown.stable:
        raise DeploymentError(f"deployment {shown.name} is not serving yet (phase {shown.phase}"
                              f"{': ' + shown.message if shown.message else ''})", field="status.url",
                              hint="wait for it: pg.deploy_model(...) waits, or `podium rollout status "
                              f"{pg.name} -w`")
    chosen = protocol or shown.protocol
    answer = post(shown.url.rstrip("/") + predict_path(shown.inference_service, chosen),
                  request_body(data, chosen), timeout=timeout)
    labels, frame = decode(answer, chosen)
    if not probabilities:
        return labels
    if frame is None:
        raise DeploymentError("the served model gives no probabilities (a regression, or a model without them)",
                              field="probabilities", hint="call predict without probabilities=True")
    return labels, frame
