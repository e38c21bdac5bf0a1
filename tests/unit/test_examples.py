"""Every example validates against the generated CRDs; every invalid one is rejected naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from podium.api import MODEL_DEPLOYMENT, PLAYGROUND, SUBMISSION
from podium.api.validation import ManifestError, manifest_problems, validate_manifest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALID = sorted(EXAMPLES.glob("*.yaml"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))
MODELS = {r.kind: r.spec_model for r in (PLAYGROUND, SUBMISSION, MODEL_DEPLOYMENT)}


def test_there_are_examples_of_each_kind():
    kinds = {yaml.safe_load(path.read_text())["kind"] for path in VALID}
    assert kinds == set(MODELS)
    assert len(INVALID) >= 5


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_example_passes_schema_cel_and_pydantic(path):
    manifest = yaml.safe_load(path.read_text())
    validate_manifest(manifest)
    MODELS[manifest["kind"]].model_validate(manifest["spec"])


def _expected_error(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# expect-error:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{path} lacks an '# expect-error:' line")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_example_is_rejected_naming_the_field(path):
    manifest = yaml.safe_load(path.read_text())
    expected = _expected_error(path)
    with pytest.raises(ManifestError) as raised:
        validate_manifest(manifest)
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
    # The SDK's pydantic models apply the same rules before anything reaches the API server.
    with pytest.raises(ValueError, match=expected.split()[0]):
        MODELS[manifest["kind"]].model_validate(manifest["spec"])


def test_unknown_kind_is_named():
    problems = None
    with pytest.raises(ManifestError) as raised:
        manifest_problems({"apiVersion": "podium.dev/v1alpha1", "kind": "Leaderboard"})
    problems = raised.value.problems
    assert "Leaderboard" in problems[0] and "Playground" in problems[0]


def test_typo_in_field_is_rejected_by_the_sdk():
    manifest = yaml.safe_load((EXAMPLES / "playground.yaml").read_text())
    manifest["spec"]["primaryMetrik"] = "accuracy"
    with pytest.raises(ValueError, match="primaryMetrik"):
        PLAYGROUND.spec_model.model_validate(manifest["spec"])
