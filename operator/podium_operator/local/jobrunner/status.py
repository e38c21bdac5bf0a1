"""Pod and Job status as the kubelet and the Job controller write them (pure functions).

Every function returns plain dicts ready for a merge-patch of ``status``: a ``None`` value
deletes the field, as the real controllers omit zero counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from podium.api.meta import format_time
from podium_operator.local.podspec.manifests import backoff_limit

MAX_MESSAGE_BYTES = 4096  # the kubelet's cap on a termination message
FALLBACK_LOG_LINES = 80  # FallbackToLogsOnError: the last 80 lines …
FALLBACK_LOG_BYTES = 2048  # … or 2 KiB of the log, whichever is shorter
_OOM_MARKERS = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"out of memory")

# --- Containers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    reason: str = "ContainerCreating"
    message: str | None = None


@dataclass(frozen=True)
class Running:
    started_at: datetime


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    finished_at: datetime
    started_at: datetime | None = None
    message: str | None = None
    signal: int | None = None


ContainerState = Waiting | Running | Terminated


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    image: str
    state: ContainerState


def exit_code(returncode: int) -> tuple[int, int | None]:
    """A process return code as a container exit code and signal (killed by 9 → 137)."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def looks_like_oom(log_tail: bytes) -> bool:
    """Whether a failed process ran out of memory (an ``RLIMIT_AS`` failure is a failed malloc)."""
    return any(marker in log_tail for marker in _OOM_MARKERS)


def terminated_reason(code: int, *, killed_for: str | None = None, oom: bool = False) -> str:
    if killed_for is not None:
        return killed_for
    if code == 0:
        return "Completed"
    return "OOMKilled" if oom else "Error"


def log_tail(log: bytes) -> str:
    """The end of a log as ``FallbackToLogsOnError`` reports it."""
    lines = log[-FALLBACK_LOG_BYTES:].splitlines(keepends=True)[-FALLBACK_LOG_LINES:]
    return b"".join(lines).decode(errors="replace")


def termination_message(file_content: bytes, log: bytes, *, code: int, fallback_to_logs: bool) -> str | None:
    """The kubelet's termination message: the file's content, else the log tail on error."""
    message = file_content[:MAX_MESSAGE_BYTES].decode(errors="replace")
    if not message and fallback_to_logs and code != 0:
        message = log_tail(log)
    return message or None


def container_status(info: ContainerInfo) -> dict[str, Any]:
    state = info.state
    running = isinstance(state, Running)
    return {
        "name": info.name,
        "image": info.image,
        "imageID": "",
        "ready": running,
        "started": running,
        "restartCount": 0,
        "state": _state(state),
    }


def _state(state: ContainerState) -> dict[str, Any]:
    if isinstance(state, Waiting):
        return {"waiting": _drop_none({"reason": state.reason, "message": state.message})}
    if isinstance(state, Running):
        return {"running": {"startedAt": _timestamp(state.started_at)}}
    return {
        "terminated": _drop_none(
            {
                "exitCode": state.exit_code,
                "signal": state.signal,
                "reason": state.reason,
                "message": state.message,
                "startedAt": _timestamp(state.started_at) if state.started_at else None,
                "finishedAt": _timestamp(state.finished_at),
            }
        )
    }


# --- Pods ---------------------------------------------------------------------------------------


def pod_phase(init: Sequence[ContainerInfo], main: Sequence[ContainerInfo]) -> str:
    """``restartPolicy: Never`` phases: Pending until all init containers succeed and a main one runs."""
    for c in init:
        if not isinstance(c.state, Terminated):
            return "Pending"
        if c.state.exit_code != 0:
            return "Failed"
    states = [c.state for c in main]
    if all(isinstance(s, Waiting) for s in states):
        return "Pending"
    if not all(isinstance(s, Terminated) for s in states):
        return "Running"
    return "Succeeded" if all(s.exit_code == 0 for s in states if isinstance(s, Terminated)) else "Failed"


def pod_status(
    *,
    init: Sequence[ContainerInfo],
    main: Sequence[ContainerInfo],
    start_time: datetime,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The pod's ``status``; a pod-level ``reason`` (e.g. ``DeadlineExceeded``) means it failed."""
    phase = "Failed" if reason else pod_phase(init, main)
    initialized = all(isinstance(c.state, Terminated) and c.state.exit_code == 0 for c in init)
    ready = phase == "Running" and all(isinstance(c.state, Running) for c in main)
    not_ready = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
    return {
        "phase": phase,
        "reason": reason,
        "message": message,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": _timestamp(start_time),
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            _pod_condition("Initialized", initialized, "ContainersNotInitialized"),
            _pod_condition("ContainersReady", ready, not_ready),
            _pod_condition("Ready", ready, not_ready),
        ],
        "initContainerStatuses": [container_status(c) for c in init] or None,
        "containerStatuses": [container_status(c) for c in main],
    }


def _pod_condition(kind: str, true: bool, reason: str) -> dict[str, str]:
    if true:
        return {"type": kind, "status": "True"}
    return {"type": kind, "status": "False", "reason": reason}


def pod_is_finished(pod: Mapping[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


# --- Jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A Job's final condition (``Complete`` or ``Failed``)."""

    type: str
    reason: str
    message: str


def job_deadline(job_spec: Mapping[str, Any], start_time: datetime) -> datetime | None:
    seconds = job_spec.get("activeDeadlineSeconds")
    return None if seconds is None else start_time + timedelta(seconds=float(seconds))


def job_verdict(
    job_spec: Mapping[str, Any], *, succeeded: int, failed: int, start_time: datetime, now: datetime
) -> Verdict | None:
    """Whether the Job is over. The deadline beats the backoff limit: the pod it kills also fails."""
    completions = job_spec.get("completions")
    if succeeded >= (1 if completions is None else completions):
        return Verdict("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
    deadline = job_deadline(job_spec, start_time)
    if deadline is not None and now >= deadline:
        return Verdict("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    if failed > backoff_limit(job_spec):
        return Verdict("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    return None


def job_is_finished(job: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in job.get("status", {}).get("conditions") or []
    )


def job_status(
    *,
    start_time: datetime,
    active: int,
    succeeded: int,
    failed: int,
    now: datetime,
    verdict: Verdict | None = None,
    conditions: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The Job's ``status``; ``conditions`` are kept and the verdict's ones are added (k8s ≥ 1.31)."""
    result = [dict(c) for c in conditions]
    if verdict is not None:
        interim = "SuccessCriteriaMet" if verdict.type == "Complete" else "FailureTarget"
        for kind in (interim, verdict.type):
            result = set_condition(result, kind, "True", verdict.reason, verdict.message, now)
    complete = verdict is not None and verdict.type == "Complete"
    return {
        "startTime": _timestamp(start_time),
        "active": active or None,
        "succeeded": succeeded or None,
        "failed": failed or None,
        "completionTime": _timestamp(now) if complete else None,
        "conditions": result or None,
    }


def set_condition(
    conditions: Iterable[Mapping[str, Any]], kind: str, status: str, reason: str, message: str, now: datetime
) -> list[dict[str, Any]]:
    """Conditions with ``kind`` replaced (or appended)."""
    new = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": _timestamp(now),
        "lastTransitionTime": _timestamp(now),
    }
    return [dict(c) for c in conditions if c.get("type") != kind] + [new]


# --- Helpers ------------------------------------------------------------------------------------



def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _timestamp(moment: datetime) -> str:
    return format_time(moment, fraction=False)  # the API server writes whole seconds
