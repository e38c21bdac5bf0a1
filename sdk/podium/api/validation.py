"""Validate manifests offline exactly as the API server would: the CRD's OpenAPI schema, then its CEL rules.

Used by ``podium validate`` and by the tests that keep examples/ honest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from podium.api.crdgen import crd_manifest
from podium.api.resources import ALL_KINDS, ResourceKind


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


def _json_path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "<root>"


def schema_problems(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """OpenAPI v3.0 is JSON Schema draft 4 plus extensions (which validators ignore)."""
    import jsonschema

    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [
        f"{_json_path(error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _rules_with_values(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[dict[str, Any], Any, str]]:
    for rule in schema.get("x-kubernetes-validations", []):
        yield rule, value, path
    if isinstance(value, dict):
        for name, child_schema in schema.get("properties", {}).items():
            if name in value:
                yield from _rules_with_values(child_schema, value[name], f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from _rules_with_values(schema["items"], item, f"{path}[{index}]")


def cel_problems(manifest: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Evaluate every CEL rule on create (transition rules that use oldSelf are skipped, as on create)."""
    import celpy

    environment = celpy.Environment()
    problems = []
    for rule, value, path in _rules_with_values(schema, manifest, ""):
        if "oldSelf" in rule["rule"]:
            continue
        program = environment.program(environment.compile(rule["rule"]))
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if isinstance(result, Exception) or not bool(result):
            field = path.lstrip(".") + rule.get("fieldPath", "")
            leaf = field.rsplit(".", 1)[-1]
            message = rule["message"].removeprefix(f"{leaf}: ")
            problems.append(f"{field}: {message}")
    return problems


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    resource = kind_of(manifest)
    schema = crd_manifest(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # CEL only runs on schema-valid objects, as in the API server.
    return schema_problems(manifest, schema) or cel_problems(manifest, schema)


def validate_manifest(manifest: dict[str, Any]) -> ResourceKind:
    problems = manifest_problems(manifest)
    if problems:
        name = f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name', '<unnamed>')}"
        raise ManifestError(name, problems)
    return kind_of(manifest)
