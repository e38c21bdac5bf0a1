"""The vendored KServe CRDs are the fixtures' (``shared/fixtures/kserve``) less schema descriptions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from podium_operator.local.serving.vendor_crds import NAMES, kserve_crds, strip_descriptions

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "kserve"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no KServe fixtures at {FIXTURES}")
def test_vendored_crds_equal_the_fixtures_without_descriptions() -> None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for name, vendored in zip(NAMES, kserve_crds(), strict=True):
        fixture = yaml.load((FIXTURES / f"{name}.yaml").read_text(), Loader=loader)
        assert vendored == strip_descriptions(fixture), name


def test_strip_descriptions_keeps_properties_named_description() -> None:
    schema = {"description": "text", "properties": {"description": {"type": "string", "description": "x"}}}
    assert strip_descriptions(schema) == {"properties": {"description": {"type": "string"}}}


def test_vendored_crds_are_the_three_kserve_kinds() -> None:
    kinds = [crd["spec"]["names"]["kind"] for crd in kserve_crds()]
    assert kinds == ["InferenceService", "ServingRuntime", "ClusterServingRuntime"]
