"""The real KServe CRD schemas (../shared/fixtures/kserve/, copied from KServe v0.20.0) for validating manifests."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from podium.api import schema

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "kserve"


@functools.cache
def crd_schema(plural: str) -> dict[str, Any]:
    path = FIXTURES / f"serving.kserve.io_{plural}.yaml"
    if not path.exists():
        pytest.skip(f"the KServe CRD fixture {path} is not here (it lives in the shared/ folder beside the repo)")
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    found: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return found


def problems(manifest: dict[str, Any], plural: str = "inferenceservices") -> list[str]:
    """Schema violations and fields the CRD does not know (the API server would prune or refuse them)."""
    found = crd_schema(plural)
    unknown = [f"{path}: unknown field" for path in schema.unknown_fields(manifest, found)]
    return unknown + [f"{path}: {message}" for path, message in schema.validate(manifest, found)]
