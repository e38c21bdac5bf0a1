"""Submission decisions (pure): admission against the Playground, the next evaluation step, the outcome."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from podium.api.meta import parse_time
from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium.api.training import MetaHyperparameters
from podium.uri import outside_prefix
from podium_operator.reconcile.evaluation_jobs import Step
from podium_operator.reconcile.records import SubmissionRecord


@dataclass(frozen=True)
class Rejection:
    reason: str  # CamelCase, for conditions and Events
    message: str


def references(spec: SubmissionSpec) -> list[tuple[str, str]]:
    """``(field, uri)`` of every object the Submission names (what the trusted steps would fetch)."""
    found: list[tuple[str, str]] = []
    if spec.model is not None:
        found.append(("model.uri", spec.model.uri))
        if spec.model.preprocessor_uri:
            found.append(("model.preprocessorUri", spec.model.preprocessor_uri))
    if spec.predictions is not None:
        found.append(("predictions.uri", spec.predictions.uri))
    if spec.training is not None and spec.training.data is not None:  # the playground's own data is the owner's
        found += [("training.data.features", spec.training.data.features),
                  ("training.data.labels", spec.training.data.labels)]
    return found


def reference_problem(spec: SubmissionSpec, prefix: str) -> Rejection | None:
    """A Submission names only objects below its submitter's upload prefix (see podium.uri.upload_prefix).

    The stage and score steps fetch what it names with the operator's access: anything else — a holdout,
    the stored split, another participant's upload or private score — would be read on its behalf.
    """
    for field, uri in references(spec):
        why = outside_prefix(uri, prefix)
        if why is not None:
            return Rejection(
                "ForeignReference",
                f"{field}: {why}; a Submission may name only objects its submitter uploaded, below {prefix} "
                "(the SDK's submit_model and submit_predictions upload there)",
            )
    return None


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
        return training_problem(spec, playground)
    return None


def training_problem(spec: SubmissionSpec, playground: PlaygroundSpec) -> Rejection | None:
    """Why this training spec cannot train a model for this playground (before any Job exists), or None."""
    training = spec.training
    assert training is not None
    if training.data is None and playground.training_data is None:
        return Rejection("NoTrainingData", "training.data: this playground has no trainingData; give training.data "
                                           "(features and labels URIs) or ask its owner to set spec.trainingData")
    settings = training.settings()
    if isinstance(settings, MetaHyperparameters):
        regression = settings.meta_dataset == "sinusoid"
        if regression != (playground.task == "regression"):
            return Rejection("InvalidSpec", f"training.hyperparameters.metaDataset: {settings.meta_dataset} "
                                            f"does not fit a {playground.task} playground; use sinusoid for regression, "
                                            "rotated-digits or font-glyphs for classification")
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
    "train": "training the model",
    "stage": "staging the model and holdout features",
    "predict": "running your model on the holdout features",
    "score": "scoring the predictions",
}


def failure_message(step: Step | Literal["train"], job: dict[str, Any], pod: dict[str, Any] | None) -> str:
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
    spec = "training" if step == "train" else "evaluation"
    if reason == "DeadlineExceeded":
        seconds = job.get("spec", {}).get("activeDeadlineSeconds")
        return f"Timed out while {what}: the {spec} exceeded its {seconds}s limit ({spec}.timeoutSeconds)."
    if terminated.get("reason") == "OOMKilled":
        fix = "lower hyperparameters.metaBatch" if step == "train" else "shrink the model"
        return f"Out of memory while {what}: raise {spec}.resources.memory or {fix}."
    code = terminated.get("exitCode")
    prefix = f"Failed while {what}" + (f" (exit code {code})" if code is not None else "")
    return f"{prefix}: {detail}" if detail else f"{prefix}."


def submitted_today(records: Iterable[SubmissionRecord], *, submitter: str, now: datetime) -> int:
    """Competition submissions by this member that were given a version today (UTC), from the records."""
    day = now.date()
    return sum(1 for record in records
               if record.track == "competition" and record.submitter == submitter and record.version is not None
               and record.submitted_at is not None and parse_time(record.submitted_at).date() == day)


MAX_METADATA_KEYS = 200
MAX_METADATA_TEXT = 256


def _status_number(value: int | float) -> bool:
    """A number a status holds as it is: finite (NaN breaks every client's JSON), an int within int64."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return math.isfinite(value)


def bounded_metadata(raw: Any) -> dict[str, Any]:
    """Metadata comes from the untrusted predict step: keep scalars only (finite numbers), few keys, short strings."""
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in list(raw.items())[:MAX_METADATA_KEYS]:
        if not isinstance(key, str) or len(key) > MAX_METADATA_TEXT or not _unicode(key):
            continue
        if value is None or (isinstance(value, bool | int | float) and _status_number(value)):
            kept[key] = value
        elif isinstance(value, str) and _unicode(value):
            kept[key] = value[:MAX_METADATA_TEXT]
    return kept


def _unicode(text: str) -> bool:
    """Text that encodes as UTF-8 (no lone surrogates), as every status must."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
