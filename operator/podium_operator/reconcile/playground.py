"""Playground status (pure): Ready and observedGeneration from the spec and the holdout check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from podium.api.meta import condition_is_true
from podium.api.playground import PlaygroundSpec
from podium_operator.reconcile.conditions import set_condition
from podium_operator.reconcile.validation import parse_spec


@dataclass(frozen=True)
class PlaygroundOutcome:
    spec: PlaygroundSpec | None
    status_patch: dict[str, Any]
    ready: bool
    reason: str
    message: str
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    # Not Ready for its holdout, which the owner may still upload or fix: worth looking at again.
    holdout_pending: bool = False


def competition_closed(spec: PlaygroundSpec, now: datetime) -> bool:
    competition = spec.competition
    if competition is None:
        return False
    return competition.closed or (competition.deadline is not None and now >= competition.deadline)


def reconcile_playground(
    spec: dict[str, Any],
    *,
    generation: int | None,
    status: dict[str, Any] | None,
    now: datetime,
    holdout_problem: str | None = None,
    holdout_reason: str = "",
) -> PlaygroundOutcome:
    """Ready from the spec and the holdout check (``holdout_reason``: InvalidHoldout, or HoldoutUnavailable)."""
    parsed, problem = parse_spec(PlaygroundSpec, spec)
    if parsed is None:
        ready, reason, message = False, "InvalidSpec", problem
    elif holdout_problem:
        ready, reason, message = False, holdout_reason or "HoldoutUnavailable", holdout_problem
    else:
        ready, reason, message = True, "Validated", f"{parsed.task} playground ranked by {parsed.primary_metric}"
    conditions = set_condition(
        (status or {}).get("conditions"),
        type_="Ready",
        status=ready,
        reason=reason,
        message=message,
        now=now,
        generation=generation,
    )
    patch: dict[str, Any] = {"observedGeneration": generation, "conditions": conditions}
    was_ready = condition_is_true({"status": status})
    events = []
    if ready and not was_ready:
        events.append(("Normal", reason, message))
    elif not ready:
        events.append(("Warning", reason, message))
    if parsed is not None:
        patch["competitionClosed"] = closed = competition_closed(parsed, now)
        if closed and not (status or {}).get("competitionClosed") and ready:
            assert parsed.competition is not None
            why = "closed by its owner" if parsed.competition.closed else f"deadline {parsed.competition.deadline} passed"
            events.append(("Normal", "CompetitionClosed", f"the competition is over ({why}): no more competition "
                           "submissions; the private leaderboard is published in status.privateLeaderboard"))
    return PlaygroundOutcome(
        spec=parsed, status_patch=patch, ready=ready, reason=reason, message=message, events=events,
        holdout_pending=parsed is not None and bool(holdout_problem),
    )


@dataclass(frozen=True)
class HoldoutSync:
    conditions: list[dict[str, Any]]
    events: list[tuple[str, str, str]]


def holdout_sync(
    status: dict[str, Any] | None, *, source_sha256: str | None, now: datetime, generation: int | None,
    problem: str = "",
) -> HoldoutSync:
    """The ``HoldoutInSync`` condition: does ``spec.holdout`` still hold what was snapshotted at Ready?

    Evaluations only ever read the snapshot, so a changed (or vanished) source never changes a score; it
    is reported, once per change, so the owner knows the playground is not scoring against the new data.
    """
    status = status or {}
    snapshot = (status.get("holdout") or {}).get("sha256", "")
    if source_sha256 is None:
        in_sync, reason = False, "HoldoutSourceMissing"
        message = (f"spec.holdout can no longer be read ({problem}); evaluations keep using the snapshot taken at "
                   "Ready (status.holdout)")
    elif source_sha256 == snapshot:
        in_sync, reason, message = True, "SourceUnchanged", "spec.holdout still holds the snapshot's data"
    else:
        in_sync, reason = False, "HoldoutSourceChanged"
        message = (f"spec.holdout's objects changed since the snapshot taken at Ready (sha256 {snapshot[:12]} → "
                   f"{source_sha256[:12]}); evaluations keep using the snapshot, so scores stay comparable. To "
                   "score against the new data, create a new Playground with it")
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == "HoldoutInSync"), None)
    conditions = set_condition(status.get("conditions"), type_="HoldoutInSync", status=in_sync, reason=reason,
                               message=message, now=now, generation=generation)
    changed = previous is None or previous.get("reason") != reason or previous.get("message") != message
    events = [("Warning", reason, message)] if changed and not in_sync else []
    return HoldoutSync(conditions=conditions, events=events)
