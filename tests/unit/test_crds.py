"""The CRDs are generated from the API models, structural, and valid Kubernetes objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from podium.api import ALL_KINDS
from podium.api.crdgen import crd_filename, crd_manifest, render_crd

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.31"


@pytest.mark.parametrize("resource", ALL_KINDS, ids=lambda r: r.kind)
@pytest.mark.parametrize("directory", ["crds", "charts/podium/crds"])
def test_committed_crd_matches_generated(resource, directory):
    committed = REPO / directory / crd_filename(resource)
    assert committed.exists(), f"{committed} missing: run `make crds`"
    assert committed.read_text() == render_crd(resource), f"{committed} is stale: run `make crds`"


@pytest.mark.parametrize("resource", ALL_KINDS, ids=lambda r: r.kind)
def test_crd_is_a_valid_kubernetes_object(resource):
    kubernetes_validate.validate(crd_manifest(resource), K8S_VERSION, strict=True)


def _walk(node: dict[str, Any], path: str = ""):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("resource", ALL_KINDS, ids=lambda r: r.kind)
def test_schema_is_structural(resource):
    schema = crd_manifest(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "oneOf" not in node, path
        # Kubernetes' structural-schema rule: every node typed, except int-or-string and preserve-unknown ones.
        untyped_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or untyped_ok, f"{path} has no type"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), f"{path}.{bound} must be a boolean in OpenAPI v3.0"


@pytest.mark.parametrize("resource", ALL_KINDS, ids=lambda r: r.kind)
def test_crd_names_columns_and_status(resource):
    crd = crd_manifest(resource)
    names = crd["spec"]["names"]
    version = crd["spec"]["versions"][0]
    assert names["shortNames"] and names["categories"] == ["podium"]
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"conditions", "observedGeneration"} <= status.keys()


def test_short_names_are_the_documented_ones():
    assert {r.kind: r.short_names for r in ALL_KINDS} == {
        "Playground": ("pg",),
        "Submission": ("sub",),
        "ModelDeployment": ("mdep",),
    }


def test_cel_rules_present_for_cross_field_rules():
    rules = {
        r.kind: [v["rule"] for v in crd_manifest(r)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
                 ["properties"]["spec"].get("x-kubernetes-validations", [])]
        for r in ALL_KINDS
    }
    assert any("has(self.model)" in rule and "has(self.training)" in rule for rule in rules["Submission"])
    assert any("has(self.submission) != has(self.version)" in rule for rule in rules["ModelDeployment"])
    fraction = crd_manifest(ALL_KINDS[0])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["competition"]["properties"]["privateFraction"]
    assert fraction["minimum"] == 0 and fraction["maximum"] == 1
    assert fraction["exclusiveMinimum"] is True and fraction["exclusiveMaximum"] is True


def test_rendered_yaml_round_trips():
    for resource in ALL_KINDS:
        assert yaml.safe_load(render_crd(resource)) == crd_manifest(resource)
