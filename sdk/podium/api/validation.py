"""Validate manifests offline exactly as the API server would: the CRD's OpenAPI schema, then its CEL rules.

Used by ``podium validate`` and by the tests that keep examples/ honest. The checks are
:mod:`podium.api.schema` and :mod:`podium.api.cel`, the same ones local mode's API emulator
runs on every write (prune, apply defaults, validate the schema, then the CEL rules); only
the wording here is ``podium validate``'s own.
"""

from __future__ import annotations

from typing import Any

from podium.api import cel
from podium.api import schema as structural
from podium.api.crdgen import crd_manifest
from podium.api.resources import ALL_KINDS, ResourceKind
from podium.api.schema import RULE, Violation


class ManifestError(ValueError):
    """A manifest the API server would reject; ``problems`` name each field."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{name} is invalid:\n" + "\n".join(f"  - {problem}" for problem in problems))


def kind_of(manifest: dict[str, Any]) -> ResourceKind:
    for resource in ALL_KINDS:
        if manifest.get("kind") == resource.kind and manifest.get("apiVersion") == resource.api_version:
            return resource
    known = ", ".join(f"{r.api_version} {r.kind}" for r in ALL_KINDS)
    raise ManifestError(
        "manifest", [f"apiVersion/kind: {manifest.get('apiVersion')} {manifest.get('kind')} is not one of: {known}"]
    )


def _wording(violation: Violation) -> str:
    """``field: what is wrong``; a rule's message without a leading ``<field name>: ``."""
    message = violation.message
    if violation.keyword == RULE:
        message = message.removeprefix(f"{violation.field.rsplit('.', 1)[-1]}: ")
    return f"{violation.field}: {message}"


def _checked(manifest: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The manifest as the API server would store it: unknown fields pruned, defaults applied."""
    pruned, _ = structural.prune(manifest, schema)
    return structural.apply_defaults(pruned, schema)


def schema_problems(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """OpenAPI v3.0 is JSON Schema draft 4 plus extensions (which validators ignore)."""
    return [_wording(v) for v in structural.check(_checked(manifest, schema), schema)]


def cel_problems(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Evaluate every CEL rule on create (transition rules that use oldSelf are skipped, as on create)."""
    return [_wording(v) for v in cel.check(_checked(manifest, schema), schema)]


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    resource = kind_of(manifest)
    schema = crd_manifest(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = _checked(manifest, schema)
    # CEL only runs on schema-valid objects, as in the API server.
    violations = structural.check(obj, schema) or cel.check(obj, schema)
    return [_wording(violation) for violation in violations]


def validate_manifest(manifest: dict[str, Any]) -> ResourceKind:
    problems = manifest_problems(manifest)
    if problems:
        name = f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name', '<unnamed>')}"
        raise ManifestError(name, problems)
    return kind_of(manifest)
