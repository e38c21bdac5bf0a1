"""What the API server does to an object's body before storing it (pure): unknown fields (a custom resource's
against its CRD's structural schema, a builtin's against the official client's model of it), and for custom
resources defaults and validation (schema and CEL rules); and the options of a write that decide how."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kmock

from podium.api import cel, schema
from podium_operator.local.apiserver import builtin_fields, errors
from podium_operator.local.apiserver.crds import CustomResource

FIELD_VALIDATIONS = ("Strict", "Warn", "Ignore")


@dataclass
class WriteOptions:
    """What a create, update or patch asks besides its body; the warnings for the response come back in it.

    ``dry_run`` (``?dryRun=All``): everything a real write does (admission, defaults, validation, conflicts),
    nothing stored, the would-be object returned. ``field_validation`` (``?fieldValidation=``, Warn unless
    given, as on a cluster; kubectl sends Strict): unknown fields of a custom resource are an error
    (Strict), dropped with a warning each (Warn) or dropped silently (Ignore).
    """

    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)


def conform(custom: CustomResource | None, resource: kmock.resource, obj: dict[str, Any], options: WriteOptions,
            old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Prune, default and validate ``obj`` against its CRD version's schema and rules; a builtin is only pruned."""
    if custom is None:
        model = builtin_fields.model(resource.group, resource.version, obj.get("kind"))
        if model is None:
            return obj
        pruned, unknown = builtin_fields.prune(obj, model)
        _unknown_fields(unknown, str(obj.get("kind")), resource, options)
        return dict(pruned)
    if custom.schema is None:
        return obj
    kind = custom.info.kind or ""
    obj, unknown = schema.prune_strict(obj, custom.schema)  # one walk: what to refuse and what to keep
    _unknown_fields(unknown, kind, resource, options)
    obj = schema.apply_defaults(obj, custom.schema)
    causes = schema.validate(obj, custom.schema) or cel.violations(obj, custom.schema, old)
    if causes:
        raise errors.invalid(kind, resource.group, obj["metadata"]["name"], causes)
    return obj


def _unknown_fields(unknown: list[str], kind: str, resource: kmock.resource, options: WriteOptions) -> None:
    """Refuse (Strict) or warn of (Warn) fields the object's type does not have; Ignore: nothing."""
    if unknown and options.field_validation == "Strict":
        fields = ", ".join(f'unknown field "{path}"' for path in unknown)
        raise errors.bad_request(f'{kind} in version "{resource.version}" cannot be handled as a {kind}: '
                                 f"strict decoding error: {fields}")
    if options.field_validation == "Warn":
        options.warnings.extend(f'unknown field "{path}"' for path in unknown)
