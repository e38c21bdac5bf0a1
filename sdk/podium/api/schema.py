"""Structural-schema handling of custom resources, as the API server does it (pure functions).

On every write of a custom resource the server prunes unknown fields, applies ``default``s
and validates against the CRD version's ``openAPIV3Schema``. CEL rules
(``x-kubernetes-validations``) are in :mod:`podium.api.cel`. ``format``s (``date-time``, …)
are checked too, as the API server does (``rfc3339-validator`` backs ``date-time``).

This is the one implementation behind both ``podium validate`` (:mod:`podium.api.validation`)
and local mode's API emulator: :func:`check` yields structured :class:`Violation` s, and
each caller words them (:func:`validate` and :meth:`Violation.api_server_message` as the
API server does).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

Schema = Mapping[str, Any]

# Always kept at the top level (and in embedded resources), whatever the schema says.
_OBJECT_ENVELOPE = ("apiVersion", "kind", "metadata")

REQUIRED = "required"
RULE = "x-kubernetes-validations"  # the keyword of a failed CEL rule
DUPLICATE = "uniqueItems"  # the keyword of a repeated item of an ``x-kubernetes-list-type: set`` list


@dataclass(frozen=True)
class Violation:
    """One thing wrong with an object, before any caller words it.

    ``field`` is the offending field's path (``spec.items[0].name``; ``<root>`` for the
    object itself), ``keyword`` the schema keyword that failed (``required``, ``enum``,
    ``maximum``, …, or :data:`RULE` for a CEL rule), ``message`` what is wrong without the
    path (JSON Schema's wording, or the rule's message) and ``value`` the offending value.
    """

    field: str
    keyword: str
    message: str
    value: Any = None

    def api_server_message(self) -> str:
        """The cause's message as the API server words it (after ``field: ``)."""
        if self.keyword == REQUIRED:
            return "Required value"
        if self.keyword == RULE:
            return f'Invalid value: "{type_name(self.value)}": {self.message}'
        if self.keyword == DUPLICATE:
            return self.message
        return f"Invalid value: {json.dumps(self.value)}: {self.message}"


def prune(value: Any, schema: Schema) -> tuple[Any, list[str]]:
    """Drop fields not declared in the schema; also return the dropped fields' paths."""
    dropped: list[str] = []
    return _prune(value, schema, "", dropped, root=True), dropped


# ObjectMeta's fields: a strict decode rejects any other key of a resource's ``metadata``.
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields",
})


def prune_strict(value: Any, schema: Schema) -> tuple[Any, list[str]]:
    """:func:`prune`, and the top-level ``metadata`` keys ObjectMeta does not have dropped too; returns the
    pruned value and every field ``fieldValidation=Strict`` refuses (``["metadata.lables", "spec.foo",
    "spec.items[1].bar"]``, in document order), from one walk."""
    metadata = value.get("metadata") if isinstance(value, Mapping) else None
    meta_keys = list(metadata) if isinstance(metadata, Mapping) else []
    unknown = [f"metadata.{key}" for key in meta_keys if key not in OBJECT_META_FIELDS]
    pruned, dropped = prune(value, schema)
    if unknown and isinstance(pruned, dict) and isinstance(pruned.get("metadata"), Mapping):
        pruned["metadata"] = {key: item for key, item in pruned["metadata"].items() if key in OBJECT_META_FIELDS}
    return pruned, unknown + dropped


def unknown_fields(value: Any, schema: Schema) -> list[str]:
    """The fields ``fieldValidation=Strict`` refuses (see :func:`prune_strict`); empty if none."""
    return prune_strict(value, schema)[1]


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill in absent fields that have a ``default`` (recursively, also inside defaults)."""
    if isinstance(value, list):
        items = schema.get("items", {})
        return [apply_defaults(item, items) for item in value]
    if not isinstance(value, dict):
        return value
    result = dict(value)
    for key, subschema in schema.get("properties", {}).items():
        if key not in result and "default" in subschema:
            result[key] = copy.deepcopy(subschema["default"])
    for key, item in result.items():
        if (subschema := _property_schema(schema, key)) is not None:
            result[key] = apply_defaults(item, subschema)
    return result


def check(value: Any, schema: Schema) -> list[Violation]:
    """Every violation of the schema (``format``s included), ordered by field; empty if valid."""
    format_checker = jsonschema.Draft4Validator.FORMAT_CHECKER
    validator = jsonschema.Draft4Validator(_to_json_schema(schema), format_checker=format_checker)
    found: dict[tuple[str, str, str], Violation] = {}  # a missing field may be reported more than once
    for error in validator.iter_errors(value):
        for violation in _describe(error):
            found.setdefault((violation.field, violation.keyword, violation.message), violation)
    return sorted(found.values(), key=lambda violation: violation.field)


def validate(value: Any, schema: Schema) -> list[tuple[str, str]]:
    """Return ``(field path, message)`` pairs for every violation, worded as the API server does.

    One pair per field (the first violation found), ordered by field; empty if valid.
    """
    found: dict[str, str] = {}
    for violation in check(value, schema):
        found.setdefault(violation.field, violation.api_server_message())
    return sorted(found.items())


def type_name(value: Any) -> str:
    """The JSON type of a value (``object``, ``array``, ``string``, …)."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}
    return names.get(type(value), type(value).__name__)


def _prune(value: Any, schema: Schema, path: str, dropped: list[str], root: bool = False) -> Any:
    if isinstance(value, list):
        items = schema.get("items", {})
        return [_prune(item, items, f"{path}[{index}]", dropped) for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    keep_envelope = root or schema.get("x-kubernetes-embedded-resource", False)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if keep_envelope and key in _OBJECT_ENVELOPE:
            result[key] = item
        elif (subschema := _property_schema(schema, key)) is not None:
            result[key] = _prune(item, subschema, _join(path, key), dropped)
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            result[key] = item
        else:
            dropped.append(_join(path, key))
    return result


def _property_schema(schema: Schema, key: str) -> Schema | None:
    properties = schema.get("properties", {})
    if key in properties:
        return properties[key]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _to_json_schema(schema: Any) -> Any:
    # OpenAPI's `nullable` and Kubernetes' int-or-string have no JSON-Schema keyword of their own.
    if isinstance(schema, list):
        return [_to_json_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result = {key: _to_json_schema(item) for key, item in schema.items() if key != "default"}
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    if schema.get("x-kubernetes-list-type") == "set":  # the API server refuses a repeated item of a set
        result["uniqueItems"] = True
    return result


def _describe(error: jsonschema.ValidationError) -> Iterator[Violation]:
    path = _field_path(error.absolute_path)
    if error.validator == REQUIRED:
        for missing in error.validator_value:
            if isinstance(error.instance, Mapping) and missing not in error.instance:
                yield Violation(_join(path, missing), REQUIRED, f"{missing!r} is a required property")
    elif error.validator == DUPLICATE and isinstance(error.instance, list):  # named at the repeat, as the server does
        index = next(i for i, item in enumerate(error.instance) if item in error.instance[:i])
        item = error.instance[index]
        yield Violation(f"{path}[{index}]", DUPLICATE, f"Duplicate value: {json.dumps(item)}", item)
    else:
        yield Violation(path or "<root>", str(error.validator), error.message, error.instance)


def _field_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
    return path


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
