"""`podium validate` and local mode's API emulator reject the same manifests, naming the same fields.

Both run the one schema + CEL walker in ``podium.api.schema`` / ``podium.api.cel``; these tests
send each manifest to an in-process emulator (serving the repository's CRDs) and compare the
fields its 422 names with the fields ``manifest_problems`` names.
"""

from __future__ import annotations

import copy
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import podium.api.cel
import podium.api.schema
from podium.api import ALL_KINDS
from podium.api.validation import manifest_problems
from podium_operator.local.apiserver import conform
from podium_operator.local.apiserver.server import ApiServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NAMESPACE = "default"
PLURALS = {resource.kind: resource.plural for resource in ALL_KINDS}
_names = itertools.count()


@pytest.fixture(scope="module")
def api_server() -> Iterator[ApiServer]:
    """One emulator for the module (hypothesis runs many examples against it), with the repo's CRDs."""
    with ApiServer(crd_paths=[REPO / "crds"]) as server:
        yield server


def _example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _changed(example: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    manifest = copy.deepcopy(_example(example))
    change(manifest["spec"])
    return manifest


def emulator_rejects(api_server: ApiServer, manifest: dict[str, Any]) -> set[str]:
    """The fields the emulator's 422 names when creating the manifest; empty if it is created."""
    # A fresh name each time: the manifests that are valid are really created.
    body = {**manifest, "metadata": {**manifest["metadata"], "name": f"parity-{next(_names)}"}}
    url = f"{api_server.url}/apis/{manifest['apiVersion']}/namespaces/{NAMESPACE}/{PLURALS[manifest['kind']]}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            return set()
    except urllib.error.HTTPError as error:
        status = json.loads(error.read())
        assert error.code == 422 and status["reason"] == "Invalid", status
        return {cause["field"] for cause in status["details"]["causes"]}


def validate_rejects(manifest: dict[str, Any]) -> set[str]:
    """The fields `podium validate` names (each problem reads ``field: message``)."""
    return {problem.split(": ", 1)[0] for problem in manifest_problems(manifest)}


def test_the_emulator_runs_the_sdk_walker():
    assert conform.schema is podium.api.schema
    assert conform.cel is podium.api.cel


BAD_MANIFESTS = {
    "missing required field": (
        _changed("playground.yaml", lambda spec: spec.pop("holdout")), {"spec.holdout"}),
    "missing required fields": (
        _changed("playground.yaml", lambda spec: (spec.pop("holdout"), spec.pop("task"))),
        {"spec.holdout", "spec.task"}),
    "missing nested required field": (
        _changed("submission-model.yaml", lambda spec: spec["model"].pop("uri")), {"spec.model.uri"}),
    "wrong type": (
        _changed("playground.yaml", lambda spec: spec.update(classLabels="a,b")), {"spec.classLabels"}),
    "wrong type of a number": (
        _changed("playground.yaml", lambda spec: spec["competition"].update(privateFraction="half")),
        {"spec.competition.privateFraction"}),
    "wrong type in a list": (
        _changed("modeldeployment.yaml", lambda spec: spec["rollout"].update(steps=[10, "fifty"])),
        {"spec.rollout.steps[1]"}),
    "enum violation": (
        _changed("playground.yaml", lambda spec: spec.update(task="clustering")), {"spec.task"}),
    "errors in two fields": (
        _changed("playground.yaml", lambda spec: (spec.update(task="clustering"), spec.pop("holdout"))),
        {"spec.task", "spec.holdout"}),
    "model and predictions (CEL)": (
        _changed("submission-model.yaml", lambda spec: spec.update(predictions={"uri": "s3://podium/p.npz"})),
        {"spec.model"}),
    "no source (CEL)": (
        _changed("submission-model.yaml", lambda spec: spec.pop("model")), {"spec.model"}),
    "classification without labels (CEL)": (
        _changed("playground.yaml", lambda spec: spec.pop("classLabels")), {"spec.classLabels"}),
    "submission and version (CEL)": (
        _changed("modeldeployment.yaml", lambda spec: spec.update(submission="iris-logreg")), {"spec.submission"}),
    "privateFraction too large": (
        _changed("playground.yaml", lambda spec: spec["competition"].update(privateFraction=1.5)),
        {"spec.competition.privateFraction"}),
    "privateFraction on the exclusive bound": (
        _changed("playground.yaml", lambda spec: spec["competition"].update(privateFraction=0)),
        {"spec.competition.privateFraction"}),
    "deadline that is no date-time (format)": (
        _changed("playground.yaml", lambda spec: spec["competition"].update(deadline="next friday")),
        {"spec.competition.deadline"}),
}
BAD_MANIFESTS |= {
    f"examples/invalid/{path.name}": (yaml.safe_load(path.read_text()), None)
    for path in sorted((EXAMPLES / "invalid").glob("*.yaml"))
}


@pytest.mark.parametrize(("manifest", "fields"), BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_bad_manifests_are_rejected_naming_the_same_fields(api_server, manifest, fields):
    rejected = validate_rejects(manifest)
    assert rejected, "podium validate accepted a bad manifest"
    assert emulator_rejects(api_server, manifest) == rejected
    if fields is not None:
        assert rejected == fields


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_valid_examples_are_accepted_by_both(api_server, path):
    manifest = yaml.safe_load(path.read_text())
    assert validate_rejects(manifest) == set()
    assert emulator_rejects(api_server, manifest) == set()


PARITY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
numbers = st.one_of(
    st.floats(min_value=-2, max_value=3, allow_nan=False),
    st.integers(min_value=-2, max_value=3),
    st.sampled_from([0, 0.0, -0.0, 1, 1.0, 5e-324, 1 - 2**-53]),
)


@PARITY
@given(fraction=numbers)
def test_private_fraction_bounds_agree(api_server, fraction):
    manifest = _changed("playground.yaml", lambda spec: spec["competition"].update(privateFraction=fraction))
    rejected = validate_rejects(manifest)
    assert emulator_rejects(api_server, manifest) == rejected
    in_range = 0 < fraction < 1
    assert rejected == (set() if in_range else {"spec.competition.privateFraction"})


@PARITY
@given(steps=st.lists(st.integers(min_value=-5, max_value=105), max_size=22))
def test_canary_steps_rules_agree(api_server, steps):
    """maxItems in the schema; the 1..100 and no-repeat rules in CEL (run only on schema-valid objects)."""
    manifest = _changed("modeldeployment.yaml", lambda spec: spec["rollout"].update(steps=steps))
    rejected = validate_rejects(manifest)
    assert emulator_rejects(api_server, manifest) == rejected
    valid = len(steps) <= 20 and all(1 <= step <= 100 for step in steps) and len(set(steps)) == len(steps)
    assert rejected == (set() if valid else {"spec.rollout.steps"})


@PARITY
@given(sources=st.sets(st.sampled_from(["model", "predictions", "training"])), track=st.text(max_size=12))
def test_submission_sources_and_track_agree(api_server, sources, track):
    source_specs = {
        "model": {"uri": "s3://podium/m.tar.gz"},
        "predictions": {"uri": "s3://podium/p.npz"},
        "training": _example("submission-training.yaml")["spec"]["training"],
    }

    def change(spec: dict[str, Any]) -> None:
        spec.pop("model")
        spec.update({source: source_specs[source] for source in sources}, track=track)

    manifest = _changed("submission-model.yaml", change)
    rejected = validate_rejects(manifest)
    assert emulator_rejects(api_server, manifest) == rejected
    if track not in ("experiment", "competition"):
        assert rejected == {"spec.track"}  # an enum violation: the CEL rules are not run
    else:
        assert rejected == (set() if len(sources) == 1 else {"spec.model"})
