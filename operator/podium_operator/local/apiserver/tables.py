"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get`` (pure functions).

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
rows it gets. Columns come from a CRD's ``additionalPrinterColumns``; builtins get theirs from
:mod:`.printers`, or NAME and AGE. JSONPath supports ``.a.b``, ``[0]``, ``[*]`` and ``[?(@.key=="value")]``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from podium.api.meta import parse_time

NAME_COLUMN: Mapping[str, Any] = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE_COLUMN: Mapping[str, Any] = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is the time the object was created.",
    "priority": 0,
}

_STEP = re.compile(
    r"""\.(?P<key>[\w\-/]+)"""  # .key
    r"""|\[(?P<index>-?\d+|\*)\]"""  # [0], [*]
    r"""|\[\?\(@\.(?P<fkey>[\w\-.]+)\s*==\s*"""  # [?(@.k=="v")], [?(@.k==true)], [?(@.k==3)]
    r"""(?:(?P<q>["'])(?P<fvalue>.*?)(?P=q)|(?P<literal>true|false|-?\d+(?:\.\d+)?))\s*\)\]"""
)


def wants_table(accept: str) -> bool:
    """Whether the ``Accept`` header asks for a server-side-printed Table."""
    return "as=Table" in accept


def build_table(
    objects: Iterable[Mapping[str, Any]],
    columns: Sequence[Mapping[str, Any]],
    *,
    resource_version: str,
    include_object: str,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Render objects as a Table; ``columns`` are printer columns without the NAME one."""
    columns = list(columns) or [AGE_COLUMN]
    rows = [_row(obj, columns, include_object, now) for obj in objects]
    return table([NAME_COLUMN, *columns], rows, resource_version)


def table(columns: Sequence[Mapping[str, Any]], rows: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``rows`` (``{"cells": [...], "object": ...}``) under ``columns``."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [_definition(column) for column in columns],
        "rows": rows,
    }


def jsonpath(obj: Any, expression: str) -> list[Any]:
    """Evaluate a simple JSONPath (``.status.phase``); returns all matches, maybe none."""
    values = [obj]
    position = 0
    expression = expression.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    while position < len(expression):
        step = _STEP.match(expression, position)
        if step is None:
            raise ValueError(f"unsupported JSONPath: {expression!r}")
        values = [found for value in values for found in _apply_step(value, step)]
        position = step.end()
    return values


def human_duration(seconds: float) -> str:
    """Format an age as kubectl does (apimachinery's ``duration.HumanDuration``)."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if minutes < 10:
        return _compound(minutes, "m", total % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _compound(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _compound(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _compound(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _compound(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    return f"{major}{major_unit}{minor}{minor_unit}" if minor else f"{major}{major_unit}"


def _apply_step(value: Any, step: re.Match[str]) -> list[Any]:
    if step["key"] is not None:
        return [value[step["key"]]] if isinstance(value, Mapping) and step["key"] in value else []
    if not isinstance(value, list):
        return []
    if step["index"] == "*":
        return list(value)
    if step["index"] is not None:
        index = int(step["index"])
        return [value[index]] if -len(value) <= index < len(value) else []
    if step["literal"] is not None:
        literal = step["literal"]
        expected: Any = {"true": True, "false": False}.get(literal)
        expected = float(literal) if expected is None else expected
        return [item for item in value if _filter_matches(item, step["fkey"], expected)]
    return [item for item in value if _filter_matches(item, step["fkey"], step["fvalue"])]


def _filter_matches(item: Any, key: str, expected: str | bool | float) -> bool:
    """A quoted value compares as text; ``true``/``false`` only with booleans, numbers only with numbers."""
    found = jsonpath(item, "." + key)
    if not found:
        return False
    value = found[0]
    if isinstance(expected, bool):
        return value is expected
    if isinstance(expected, float):
        return isinstance(value, int | float) and not isinstance(value, bool) and value == expected
    return str(value) == expected


def _definition(column: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": column["name"],
        "type": column.get("type", "string"),
        "format": column.get("format", ""),
        "description": column.get("description", ""),
        "priority": column.get("priority", 0),
    }


def _row(
    obj: Mapping[str, Any], columns: Sequence[Mapping[str, Any]], include_object: str, now: datetime.datetime
) -> dict[str, Any]:
    cells = [obj.get("metadata", {}).get("name")] + [_cell(obj, column, now) for column in columns]
    return {"cells": cells, "object": row_object(obj, include_object)}


def _cell(obj: Mapping[str, Any], column: Mapping[str, Any], now: datetime.datetime) -> Any:
    values = jsonpath(obj, column["jsonPath"])
    if not values:
        return None
    if column.get("type") == "date" and isinstance(values[0], str):
        return human_duration((now - parse_time(values[0])).total_seconds())
    if len(values) > 1:
        return ",".join(str(value) for value in values)
    return values[0]


def row_object(obj: Mapping[str, Any], include_object: str) -> dict[str, Any] | None:
    """What a row carries of its object, as ``?includeObject=`` asks (kubectl: the metadata only)."""
    if include_object == "None":
        return None
    if include_object == "Object":
        return dict(obj)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}
