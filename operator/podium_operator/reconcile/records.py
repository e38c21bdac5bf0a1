"""The operator's own record of each Submission (pure): the authority for versions, decisions and scores.

A Submission's ``status`` is only a view for people and tools: anyone allowed to write it (a
participant with ``submissions/status`` rights, a buggy client) could forge a version, a phase or a
score there. So every decision the operator makes — admitted or rejected, the version, who submitted,
verified or not, the metrics — is written first to a record that only the operator can write (stored
under its private object-store prefix, keyed by the Submission's uid), and quotas, leaderboards and
the next evaluation step are computed from records. The status is rewritten from the record whenever
the two disagree.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from podium.api.meta import format_time, parse_time
from podium.api.submission import TERMINAL_PHASES
from podium.evaluation.wire import finite_metrics

RecordPhase = Literal["Training", "Evaluating", "Evaluated", "Failed", "Rejected"]
MAX_RECORD_BYTES = 1 << 20
Scalar = str | int | float | bool | None


class SubmissionRecord(BaseModel):
    """What the operator decided about one Submission (one object per Submission uid)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    submission: str
    uid: str
    playground: str
    playground_uid: str = ""  # the Playground admitted to; a re-created name is another playground
    track: str = "experiment"
    submitter: str
    phase: RecordPhase
    version: int | None = None
    reason: str = ""
    message: str = ""
    verified: bool = False
    framework: str | None = None
    # The artifact evaluated (and served): the Submission's model.uri, or what its training Job produced.
    model_uri: str | None = None
    # A training Submission's configuration (algorithm, hyperparameters), as recommendations propose it.
    training: dict[str, Any] | None = None
    # Its training Job's last progress report (status.training), kept once the Job has finished.
    progress: dict[str, Any] | None = None
    score: float | None = Field(default=None, allow_inf_nan=False)
    metrics: dict[str, float] = {}
    metadata: dict[str, Scalar] = {}
    custom_metadata: dict[str, Scalar] = {}  # the submitter's spec.metadata, shown on the leaderboard
    submitted_at: str | None = None
    evaluated_at: str | None = None
    duration_seconds: float | None = Field(default=None, allow_inf_nan=False)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def finished(self, *, phase: RecordPhase, reason: str, message: str, now: datetime.datetime,
                 **outcome: Any) -> SubmissionRecord:
        """This record once the evaluation is over (metrics kept finite; the duration from ``submitted_at``)."""
        if "metrics" in outcome:
            outcome["metrics"] = finite_metrics(outcome["metrics"])
        duration = round((now - parse_time(self.submitted_at)).total_seconds(), 3) if self.submitted_at else None
        return self.model_copy(update={"phase": phase, "reason": reason, "message": message,
                                       "evaluated_at": format_time(now), "duration_seconds": duration, **outcome})


def status_view(record: SubmissionRecord) -> dict[str, Any]:
    """The Submission status fields that mirror the record (None: absent). Conditions and jobs are the flow's own."""
    timings = {"submittedAt": record.submitted_at, "startedAt": record.submitted_at,
               "evaluatedAt": record.evaluated_at, "durationSeconds": record.duration_seconds}
    evaluated = record.phase == "Evaluated"
    # status.training is the Job's live report while it trains (the flow writes it); once recorded, the record's.
    trained = {"training": dict(record.progress)} if record.progress is not None else {}
    return {
        **trained,
        "phase": record.phase,
        "version": record.version,
        "submitter": record.submitter,
        "verified": record.verified,
        "message": record.message or None,
        "timings": {k: v for k, v in timings.items() if v is not None} or None,
        "metrics": dict(record.metrics) if evaluated else None,
        "score": record.score if evaluated else None,
        "metadata": dict(record.metadata) if evaluated else None,
        "framework": record.framework if evaluated else None,
    }


def status_sync_patch(status: dict[str, Any] | None, record: SubmissionRecord) -> dict[str, Any]:
    """A merge patch that makes ``status`` show what the record says; empty when it already does.

    Keys a forged status added inside a map (``metrics``, ``metadata``, ``timings``) are removed too,
    since a merge patch would otherwise keep them.
    """
    status = status or {}
    patch: dict[str, Any] = {}
    for key, wanted in status_view(record).items():
        current = status.get(key)
        if current == wanted:
            continue
        if isinstance(wanted, dict) and isinstance(current, dict):
            patch[key] = {**{k: None for k in current if k not in wanted}, **wanted}
        else:
            patch[key] = wanted
    return patch
