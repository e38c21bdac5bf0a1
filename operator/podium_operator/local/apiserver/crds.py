"""CustomResourceDefinitions: what the API server derives from them (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml

# The verbs the API server serves for every custom resource, and for its /status.
CR_VERBS = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})


@dataclass(frozen=True)
class CustomResource:
    """One served version of a CRD: discovery info plus what the server enforces."""

    resource: kmock.resource
    info: kmock.ResourceInfo
    schema: Mapping[str, Any] | None
    printer_columns: Sequence[Mapping[str, Any]] = field(default_factory=list)

    @property
    def has_status(self) -> bool:
        return "status" in self.info.subresources


def custom_resources(crd: Mapping[str, Any]) -> list[CustomResource]:
    """All served versions of a CRD object (``apiextensions.k8s.io/v1``)."""
    spec = crd["spec"]
    names = spec["names"]
    return [
        CustomResource(
            resource=kmock.resource(spec["group"], version["name"], names["plural"]),
            info=kmock.ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                verbs=CR_VERBS,
                shortnames=names.get("shortNames", []),
                categories=names.get("categories", []),
                subresources=["status"] if "status" in version.get("subresources", {}) else [],
            ),
            schema=version.get("schema", {}).get("openAPIV3Schema"),
            printer_columns=version.get("additionalPrinterColumns", []),
        )
        for version in spec.get("versions", [])
        if version.get("served", True)
    ]


def established_status(crd: Mapping[str, Any], timestamp: str) -> dict[str, Any]:
    """The status a real server reports once it serves the CRD (for ``kubectl wait``)."""
    condition = {"status": "True", "lastTransitionTime": timestamp}
    return {
        "acceptedNames": dict(crd["spec"]["names"]),
        "conditions": [
            {**condition, "type": "NamesAccepted", "reason": "NoConflicts", "message": "no conflicts found"},
            {**condition, "type": "Established", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted"},
        ],
        "storedVersions": [v["name"] for v in crd["spec"].get("versions", []) if v.get("storage")],
    }


def load_crd_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """CRD documents from YAML files and directories (``*.yaml``/``*.yml``, sorted)."""
    return [doc for path in _yaml_files(paths) for doc in _crd_docs(path)]


def _yaml_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"})
        else:
            yield path


def _crd_docs(path: Path) -> Iterator[dict[str, Any]]:
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            yield doc
