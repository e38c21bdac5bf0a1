"""CEL validation rules of CRD schemas (``x-kubernetes-validations``), pure functions.

Each rule is evaluated with ``self`` bound to the value at its schema node, and — for
transition rules on updates — ``oldSelf`` bound to the previous value; transition rules
are skipped on create, as the API server does. ``messageExpression`` is not evaluated.
Rules are only checked when ``cel-python`` is installed; otherwise they are ignored.

The one implementation behind both ``podium validate`` and local mode's API emulator:
:func:`check` yields structured :class:`~podium.api.schema.Violation` s (keyword
:data:`~podium.api.schema.RULE`), :func:`violations` words them as the API server does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from podium.api.schema import RULE, Violation

try:
    import celpy
except ImportError:  # an optional dependency: without it, CEL rules are not enforced
    celpy = None  # type: ignore[assignment]

Schema = Mapping[str, Any]


def check(new: Any, schema: Schema, old: Any = None) -> list[Violation]:
    """Every failed rule, in schema walk order; ``message`` is the rule's message."""
    if celpy is None:
        return []
    return list(_walk(new, old, schema, ""))


def violations(new: Any, schema: Schema, old: Any = None) -> list[tuple[str, str]]:
    """``(field path, message)`` for every failed rule, worded as the API server does."""
    return [(violation.field, violation.api_server_message()) for violation in check(new, schema, old)]


def _walk(new: Any, old: Any, schema: Schema, path: str) -> Iterator[Violation]:
    if new is None:
        return
    for rule in schema.get("x-kubernetes-validations", []):
        if not _holds(rule["rule"], new, old):
            field = _join(path, rule.get("fieldPath", "").lstrip("."))
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            yield Violation(field or "<root>", RULE, message, new)
    if isinstance(new, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        for key, value in new.items():
            subschema = schema.get("properties", {}).get(key) or _mapping(schema.get("additionalProperties"))
            if subschema:
                yield from _walk(value, old_map.get(key), subschema, _join(path, key))
    elif isinstance(new, list) and schema.get("items"):
        for index, item in enumerate(new):  # list items are not correlated with old ones
            yield from _walk(item, None, schema["items"], f"{path}[{index}]")


def _holds(rule: str, new: Any, old: Any) -> bool:
    if "oldSelf" in rule and old is None:
        return True  # a transition rule: nothing to compare with on create
    activation = {"self": celpy.json_to_cel(new)}
    if old is not None:
        activation["oldSelf"] = celpy.json_to_cel(old)
    try:
        result = _program(rule).evaluate(activation)
    except celpy.CELEvalError:  # e.g. a field that is absent without has(): the rule fails
        return False
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


@functools.cache
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _mapping(value: Any) -> Schema | None:
    return value if isinstance(value, Mapping) else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key
