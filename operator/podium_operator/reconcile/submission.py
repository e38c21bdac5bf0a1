"""Submission decisions (pure): admission against the Playground, the next evaluation step, the outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from podium.api.meta import parse_time
from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium_operator.reconcile.evaluation_jobs import Step


@dataclass(frozen=True)
class Rejection:
    reason: str  # CamelCase, for conditions and Events
    message: str


def admission_problem(
    spec: SubmissionSpec,
    playground: PlaygroundSpec,
    *,
    playground_closed: bool,
    submitter: str,
    submitted_today: int,
    now: datetime,
) -> Rejection | None:
    """Why this submission may not enter the playground, or None when it may."""
    if spec.track == "experiment" and not playground.experiment.enabled:
        return Rejection("TrackDisabled", "track: the experiment track of this playground is disabled; use competition")
    if spec.track == "competition":
        competition = playground.competition
        if competition is None or not competition.enabled:
            return Rejection("TrackDisabled", "track: this playground has no competition; use track: experiment")
        if competition.deadline is not None and now >= competition.deadline:
            return Rejection(
                "DeadlinePassed",
                f"the competition deadline {competition.deadline.isoformat()} has passed; "
                "submit to the experiment track instead",
            )
        if playground_closed or competition.closed:
            return Rejection("CompetitionClosed", "track: the competition is closed; submit to the experiment track")
        if submitted_today >= competition.quota_per_day:
            return Rejection(
                "QuotaExceeded",
                f"{submitter} already made {submitted_today} competition submissions today "
                f"(quota {competition.quota_per_day} per UTC day); try again tomorrow",
            )
    if playground.visibility == "private" and playground.members and submitter not in playground.members:
        return Rejection("NotAMember", f"{submitter} is not a member of this private playground; ask its owner")
    if spec.training is not None:
        return Rejection("TrainingUnavailable", "training: training submissions are not supported by this operator yet")
    return None


JobState = Literal["absent", "running", "succeeded", "failed"]


def job_state(job: dict[str, Any] | None) -> JobState:
    if job is None:
        return "absent"
    for condition in job.get("status", {}).get("conditions", []) or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if condition.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    return "running"


@dataclass(frozen=True)
class NextAction:
    kind: Literal["create", "wait", "failed", "scored"]
    step: Step | None = None


def next_action(steps: tuple[Step, ...], jobs: Mapping[Step, dict[str, Any] | None]) -> NextAction:
    """Walk the steps in order: the first one not yet succeeded decides what happens next."""
    for step in steps:
        state = job_state(jobs.get(step))
        if state == "absent":
            return NextAction("create", step)
        if state == "running":
            return NextAction("wait", step)
        if state == "failed":
            return NextAction("failed", step)
    return NextAction("scored")


STEP_DESCRIPTIONS = {
    "stage": "staging the model and holdout features",
    "predict": "running your model on the holdout features",
    "score": "scoring the predictions",
}


def failure_message(step: Step, job: dict[str, Any], pod: dict[str, Any] | None) -> str:
    """A message a user understands: which step failed, why (deadline, memory, exit code), and what it said."""
    reason = ""
    for condition in job.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            reason = condition.get("reason", "")
    terminated: dict[str, Any] = {}
    for status in (pod or {}).get("status", {}).get("containerStatuses", []) or []:
        terminated = status.get("state", {}).get("terminated") or terminated
    detail = (terminated.get("message") or "").strip()
    what = STEP_DESCRIPTIONS[step]
    if reason == "DeadlineExceeded":
        seconds = job.get("spec", {}).get("activeDeadlineSeconds")
        return f"Timed out while {what}: the evaluation exceeded its {seconds}s limit (evaluation.timeoutSeconds)."
    if terminated.get("reason") == "OOMKilled":
        return f"Out of memory while {what}: raise evaluation.resources.memory or shrink the model."
    code = terminated.get("exitCode")
    prefix = f"Failed while {what}" + (f" (exit code {code})" if code is not None else "")
    return f"{prefix}: {detail}" if detail else f"{prefix}."


def submitted_today(submissions: list[dict[str, Any]], *, submitter: str, playground: str, now: datetime) -> int:
    """Competition submissions by this member that already hold a version, today (UTC)."""
    day = now.date()
    count = 0
    for item in submissions:
        status = item.get("status") or {}
        spec = item.get("spec") or {}
        if spec.get("playground") != playground or spec.get("track") != "competition":
            continue
        if status.get("submitter") != submitter or status.get("version") is None:
            continue
        submitted = (status.get("timings") or {}).get("submittedAt")
        if submitted and parse_time(submitted).date() == day:
            count += 1
    return count


MAX_METADATA_KEYS = 200
MAX_METADATA_TEXT = 256


def bounded_metadata(raw: Any) -> dict[str, Any]:
    """Metadata comes from the untrusted predict step: keep scalars only, few keys, short strings."""
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in list(raw.items())[:MAX_METADATA_KEYS]:
        if not isinstance(key, str) or len(key) > MAX_METADATA_TEXT:
            continue
        if isinstance(value, bool | int | float) or value is None:
            kept[key] = value
        elif isinstance(value, str):
            kept[key] = value[:MAX_METADATA_TEXT]
    return kept
