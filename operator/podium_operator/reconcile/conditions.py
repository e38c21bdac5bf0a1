"""Standard Kubernetes conditions, updated the way kstatus expects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from podium.api.meta import format_time


def set_condition(
    conditions: list[dict[str, Any]] | None,
    *,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Return a new list with one condition set; lastTransitionTime moves only when the status flips."""
    status_text = "Unknown" if status is None else str(bool(status))
    previous = next((c for c in conditions or [] if c.get("type") == type_), None)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == status_text and previous.get("lastTransitionTime")
        else format_time(now)
    )
    condition = {
        "type": type_,
        "status": status_text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    others = [c for c in conditions or [] if c.get("type") != type_]
    return [*others, condition]

