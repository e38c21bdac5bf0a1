"""Kubernetes object conventions (as in apimachinery's metav1): RFC 3339 times and conditions."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime, *, fraction: bool = True) -> str:
    """RFC 3339 in UTC with a ``Z``; ``fraction=False`` gives whole seconds, as the API server writes times."""
    moment = moment.astimezone(datetime.UTC)
    if not fraction:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 time as written by the API server or :func:`format_time` (``Z`` or an offset)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def condition_is_true(obj: Mapping[str, Any] | None, type_: str = "Ready") -> bool:
    """Whether the object's ``status.conditions`` holds ``type_`` with status "True"."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions if isinstance(c, Mapping))
