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
from podium.api.common import GROUP
from podium.api.crdgen import crd_manifest
from podium.api.resources import ALL_KINDS, ResourceKind
from podium.api.schema import RULE, Violation


class ManifestError(ValueError):
    """A manifest the API server would reject; ``problems`` name each field."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{name} is invalid:\n" + "\n".join(f"  - {problem}" for problem in problems))


NOT_A_MANIFEST = "not a manifest (a YAML mapping with apiVersion, kind, metadata and spec)"


def is_podium(manifest: Any) -> bool:
    """Whether ``podium validate`` checks this document: a mapping of the podium.dev group, or of one of its kinds."""
    if not isinstance(manifest, dict):
        return True  # not a manifest at all: checked, so that it is reported
    group = str(manifest.get("apiVersion") or "").rpartition("/")[0]
    return group == GROUP or manifest.get("kind") in {resource.kind for resource in ALL_KINDS}


def listed(document: Any) -> list[Any]:
    """The manifests a document holds: the ``items`` of a ``v1 List`` (``kind: List``, or ``…List``), else itself."""
    if not (isinstance(document, dict) and document.get("apiVersion") == "v1"
            and str(document.get("kind", "")).endswith("List")):
        return [document]
    items = document.get("items")
    if not isinstance(items, list):
        raise ManifestError(f"v1 {document.get('kind')}", ["items: not a list of manifests"])
    return items


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
    """Every problem, ``field: what is wrong``: unknown fields (refused as by ``kubectl apply``, whose
    ``fieldValidation=Strict`` is the default), then the schema's, then (on a schema-valid object) CEL's."""
    if not isinstance(manifest, dict):
        return [f"<root>: {NOT_A_MANIFEST}"]
    resource = kind_of(manifest)
    schema = crd_manifest(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    pruned, dropped = structural.prune_strict(manifest, schema)
    unknown = [f"{path}: unknown field (not in the {resource.kind} schema: check its spelling and place)"
               for path in dropped]
    obj = structural.apply_defaults(pruned, schema)
    # CEL only runs on schema-valid objects, as in the API server.
    violations = structural.check(obj, schema) or cel.check(obj, schema)
    return unknown + [_wording(violation) for violation in violations]


def display_name(manifest: Any) -> str:
    """``Playground iris``, as messages name a manifest (``<unnamed>`` where it has no name)."""
    if not isinstance(manifest, dict):
        return "document"
    metadata = manifest.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{manifest.get('kind') or '<no kind>'} {name or '<unnamed>'}"


def validate_manifest(manifest: dict[str, Any]) -> ResourceKind:
    problems = manifest_problems(manifest)
    if problems:
        raise ManifestError(display_name(manifest), problems)
    return kind_of(manifest)
