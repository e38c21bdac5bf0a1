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
) -> PlaygroundOutcome:
    parsed, problem = parse_spec(PlaygroundSpec, spec)
    if parsed is None:
        ready, reason, message = False, "InvalidSpec", problem
    elif holdout_problem:
        ready, reason, message = False, "HoldoutUnavailable", holdout_problem
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
    if parsed is not None:
        patch["competitionClosed"] = competition_closed(parsed, now)
    was_ready = condition_is_true({"status": status})
    events = []
    if ready and not was_ready:
        events.append(("Normal", reason, message))
    elif not ready:
        events.append(("Warning", reason, message))
    return PlaygroundOutcome(
        spec=parsed, status_patch=patch, ready=ready, reason=reason, message=message, events=events
    )
