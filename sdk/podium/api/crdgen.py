"""Generate CustomResourceDefinitions from the pydantic API models (pure functions).

Pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3.0 schema:
no $ref, no anyOf-with-null, boolean exclusiveMinimum/Maximum, every node typed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from podium.api.common import cel_rules
from podium.api.resources import ALL_KINDS, ResourceKind

# JSON-schema keywords that survive into the structural schema.
_KEPT = {
    "type", "format", "description", "default", "enum", "pattern", "minLength", "maxLength",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
    "items", "properties", "required", "additionalProperties", "nullable", "maxProperties",
}  # fmt: skip


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
            extra = {key: value for key, value in node.items() if key != "$ref"}
            return _resolve({**target, **extra}, defs)
        return {key: _resolve(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    return node


def _drop_null_branch(node: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` becomes plain X: an absent field is how Kubernetes says "unset"."""
    for union in ("anyOf", "oneOf"):
        branches = node.get(union)
        if branches is None:
            continue
        non_null = [branch for branch in branches if branch.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"unions other than Optional are not structural: {branches}")
        rest = {key: value for key, value in node.items() if key != union}
        node = {**non_null[0], **rest}
    return node


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    node = _drop_null_branch(node)
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _KEPT:
            continue
        elif key == "properties":
            out[key] = {name: _structural(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key == "default" and value is None:
            continue
        else:
            out[key] = value
    if node.get("x-podium-untyped"):
        pass  # any JSON value: structural schemas allow an untyped node that preserves unknown fields
    elif out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
    elif "type" not in out and "enum" in out:
        out["type"] = "string"
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A structural OpenAPI v3.0 schema for one pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_resolve(raw, defs))


def crd_manifest(resource: ResourceKind) -> dict[str, Any]:
    spec_schema = openapi_schema(resource.spec_model)
    status_schema = openapi_schema(resource.status_model)
    # `kubectl explain <kind>.spec` shows these; a model's docstring, when it has one, says more.
    spec_schema.setdefault("description", f"What the {resource.kind} should be: written by its owner.")
    status_schema.setdefault("description", f"What the operator observed and decided about the {resource.kind}; "
                                            "written only by the operator.")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "labels": {"app.kubernetes.io/name": "podium", "app.kubernetes.io/part-of": "podium"},
        },
        "spec": {
            "group": resource.group,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": list(resource.categories),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": resource.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(column) for column in resource.printer_columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": resource.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            **(cel_rules(*resource.object_rules) if resource.object_rules else {}),
                        }
                    },
                }
            ],
        },
    }


def render_crd(resource: ResourceKind) -> str:
    header = "# Generated from podium.api by `make crds`; do not edit by hand.\n"
    return header + yaml.safe_dump(crd_manifest(resource), sort_keys=False, width=120)


def crd_filename(resource: ResourceKind) -> str:
    return f"{resource.group}_{resource.plural}.yaml"


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for resource in ALL_KINDS:
        path = directory / crd_filename(resource)
        path.write_text(render_crd(resource))
        written.append(path)
    return written


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write Podium's CRDs generated from the API models.")
    parser.add_argument("directories", nargs="+", type=Path, help="Output directories, e.g. crds/")
    args = parser.parse_args()
    for directory in args.directories:
        for path in write_crds(directory):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
