"""Server-side printing of builtins, as kube-apiserver's printers (``pkg/printers/internalversion``) do it.

Each printer is the real server's column definitions plus a pure function from an object to its cells
(all of them, as the server prints with ``Wide``: kubectl hides the ``priority: 1`` ones unless
``-o wide``) and the row's conditions. Builtins without one here print NAME and AGE.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.api.meta import parse_time
from podium_operator.local.apiserver.tables import human_duration, row_object, table

Cells = list[Any]
Now = datetime.datetime


@dataclass(frozen=True)
class Printer:
    columns: Sequence[Mapping[str, Any]]
    cells: Callable[[Mapping[str, Any], Now], Cells]
    conditions: Callable[[Mapping[str, Any]], list[dict[str, Any]]] = lambda obj: []


def _column(name: str, description: str, priority: int = 0, format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": "string", "format": format_, "description": description, "priority": priority}


_NAME = _column("Name", "Name must be unique within a namespace.", format_="name")
_AGE = _column("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.")


def since(timestamp: Any, now: Now) -> str:
    """``translateTimestampSince``: a human age, ``<unknown>`` for no time."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    return human_duration((now - parse_time(timestamp)).total_seconds())


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _age(obj: Mapping[str, Any], now: Now) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


# Pods.

def _pod_cells(pod: Mapping[str, Any], now: Now) -> Cells:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    restarts, ready, last_restart = 0, 0, ""
    total = len(spec.get("containers") or [])
    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for index, container in enumerate(init_statuses):
        restarts += int(container.get("restartCount") or 0)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            reason = "Init:" + (terminated.get("reason") or _exit(terminated))
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing or _condition(status, "Initialized"):
        restarts, has_running = 0, False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or ""
            last_restart = max(last_restart, finished)
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = terminated.get("reason") or _exit(terminated)
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition(status, "Ready") else "NotReady"
    if _meta(pod).get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_cell = f"{restarts} ({since(last_restart, now)} ago)" if restarts and last_restart else str(restarts)
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    true_gates = sum(1 for gate in gates if _condition(status, gate.get("conditionType")))
    return [_meta(pod).get("name"), f"{ready}/{total}", reason, restarts_cell, _age(pod, now),
            (ips[0].get("ip") if ips else None) or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", f"{true_gates}/{len(gates)}" if gates else "<none>"]


def _exit(terminated: Mapping[str, Any]) -> str:
    signal = terminated.get("signal")
    return f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"


def _condition(status: Mapping[str, Any], kind: Any) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions") or [])


def _pod_conditions(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


PODS = Printer([
    _NAME,
    _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", "The aggregate status of the containers in this pod."),
    _column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                        "container in this pod has restarted."),
    _AGE,
    _column("IP", "podIP address allocated to the pod.", 1),
    _column("Node", "NodeName indicates in which node this pod is scheduled.", 1),
    _column("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
    _column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
], _pod_cells, _pod_conditions)


# Jobs.

def _job_cells(job: Mapping[str, Any], now: Now) -> Cells:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = status.get("startTime"), status.get("completionTime")
    duration = ""
    if start:
        finished = parse_time(end) if end else now
        duration = human_duration((finished - parse_time(start)).total_seconds())
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = ",".join(f"{key}={value}" for key, value in
                        sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
    return [_meta(job).get("name"), _job_status(job), completions, duration, _age(job, now),
            ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers),
            selector or "<none>"]


def _job_status(job: Mapping[str, Any]) -> str:
    status = job.get("status") or {}
    for condition, shown in (("Complete", "Complete"), ("Failed", "Failed")):
        if _condition(status, condition):
            return shown
    if _meta(job).get("deletionTimestamp"):
        return "Terminating"
    for condition in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _condition(status, condition):
            return condition
    return "Running"


JOBS = Printer([
    _NAME,
    _column("Status", "Status of the job."),
    _column("Completions", "The number of pods which reached phase Succeeded."),
    _column("Duration", "Time required to complete the job."),
    _AGE,
    _column("Containers", "Names of each container in the template.", 1),
    _column("Images", "Images referenced by each container in the template.", 1),
    _column("Selector", "A label query over pods that should match the pod count.", 1),
], _job_cells)


# Events.

def _event_cells(event: Mapping[str, Any], now: Now) -> Cells:
    first = since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1
    if series := event.get("series"):
        last, count = since(series.get("lastObservedTime"), now), series.get("count") or count
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingController") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return [last, event.get("type"), event.get("reason"), target, involved.get("fieldPath") or "",
            ", ".join(part for part in (component, instance) if part),
            str(event.get("message") or "").strip(), first, int(count), _meta(event).get("name")]


EVENTS = Printer([
    _column("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _column("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _column("Reason", "This should be a short, machine understandable string that gives the reason for the "
                      "transition into the object's current status."),
    _column("Object", "The object that this event is about."),
    _column("Subobject", "The field of the object that this event is about.", 1),
    _column("Source", "The component reporting this event.", 1),
    _column("Message", "A human-readable description of the status of this operation."),
    _column("First Seen", "The time at which the event was first recorded.", 1),
    _column("Count", "The number of times this event has occurred.", 1),
    _column("Name", "Name must be unique within a namespace.", 1, "name"),
], _event_cells)


# Small ones.

def _data_count(obj: Mapping[str, Any]) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


CONFIG_MAPS = Printer([_NAME, _column("Data", "Data contains the configuration data."), _AGE],
                      lambda cm, now: [_meta(cm).get("name"), _data_count(cm), _age(cm, now)])
SECRETS = Printer([_NAME, _column("Type", "Used to facilitate programmatic handling of secret data."),
                   _column("Data", "Data contains the secret data."), _AGE],
                  lambda s, now: [_meta(s).get("name"), s.get("type"), _data_count(s), _age(s, now)])
NAMESPACES = Printer([_NAME, _column("Status", "The status of the namespace"), _AGE],
                     lambda ns, now: [_meta(ns).get("name"), (ns.get("status") or {}).get("phase"), _age(ns, now)])

PRINTERS: Mapping[tuple[str, str], Printer] = {
    ("", "pods"): PODS,
    ("batch", "jobs"): JOBS,
    ("", "events"): EVENTS,
    ("", "configmaps"): CONFIG_MAPS,
    ("", "secrets"): SECRETS,
    ("", "namespaces"): NAMESPACES,
}


def printer_for(group: str | None, plural: str | None) -> Printer | None:
    return PRINTERS.get((group or "", plural or ""))


def build_table(objects: Sequence[Mapping[str, Any]], printer: Printer, *, resource_version: str,
                include_object: str, now: Now) -> dict[str, Any]:
    """Render builtins as a Table with ``printer``'s columns (see :func:`.tables.build_table` for CRDs)."""
    rows = [{"cells": printer.cells(obj, now), "object": row_object(obj, include_object),
             **({"conditions": conditions} if (conditions := printer.conditions(obj)) else {})} for obj in objects]
    return table(printer.columns, rows, resource_version)
