"""The real kopf operator reconciles Playgrounds in the local cluster, and survives restarts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podium import storage
from tests.helpers import wait_for
from tests.integration.holdouts import iris_playground, iris_split, upload_holdout

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), None)


def _get(api, name: str) -> dict[str, Any]:
    return api.get_namespaced_custom_object(*PG, name)


@pytest.fixture
def holdout(cluster):
    _, X_test, _, y_test = iris_split()
    return upload_holdout(X_test, y_test, "s3://podium/holdouts/iris")


def test_playground_becomes_ready_with_split_and_follows_generation(cluster, custom_objects, holdout):
    body = iris_playground("iris", *holdout, competition={"privateFraction": 0.4, "seed": 7})
    custom_objects.create_namespaced_custom_object(*PG, body)
    ready = wait_for(lambda: _ready(_get(custom_objects, "iris")), what="Ready condition")
    assert ready["status"] == "True" and ready["reason"] == "Validated"
    status = _get(custom_objects, "iris")["status"]
    assert status["observedGeneration"] == 1 and status["holdoutRows"] == 60
    assert status["split"]["privateRows"] == 24 and status["split"]["publicRows"] == 36
    # The split lives under the operator-only prefix, and holds row indices only.
    split = json.loads(storage.read_bytes(status["split"]["uri"]))
    assert status["split"]["uri"].startswith("s3://podium/podium-private/default/iris/")
    assert sorted(split["public"] + split["private"]) == list(range(60))

    custom_objects.patch_namespaced_custom_object(*PG, "iris", {"spec": {"primaryMetric": "f1_macro"}})
    wait_for(lambda: _get(custom_objects, "iris")["status"].get("observedGeneration") == 2, what="generation 2")
    assert "f1_macro" in _ready(_get(custom_objects, "iris"))["message"]


def test_missing_holdout_is_reported_not_ready(cluster, custom_objects):
    custom_objects.create_namespaced_custom_object(
        *PG, iris_playground("nodata", "s3://podium/none/features.csv", "s3://podium/none/labels.csv"))
    ready = wait_for(lambda: _ready(_get(custom_objects, "nodata")), what="Ready condition")
    assert ready["status"] == "False" and ready["reason"] == "HoldoutUnavailable"
    assert "holdout.features" in ready["message"] and "s3://podium/none/features.csv" in ready["message"]


def test_invalid_spec_is_rejected_by_the_api_server_naming_the_field(cluster, custom_objects, holdout):
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as raised:
        custom_objects.create_namespaced_custom_object(*PG, iris_playground("bad", *holdout, primaryMetric="rmse"))
    assert raised.value.status == 422 and "primaryMetric" in raised.value.body


def test_restart_keeps_status_and_handles_changes_made_while_down(cluster, custom_objects, holdout):
    custom_objects.create_namespaced_custom_object(*PG, iris_playground("iris", *holdout))
    wait_for(lambda: _ready(_get(custom_objects, "iris")), what="Ready")
    first = _ready(_get(custom_objects, "iris"))

    cluster.stop_operator(kill=True)
    custom_objects.patch_namespaced_custom_object(*PG, "iris", {"spec": {"primaryMetric": "balanced_accuracy"}})
    cluster.start_operator()

    wait_for(lambda: _get(custom_objects, "iris")["status"].get("observedGeneration") == 2, what="resume")
    after = _ready(_get(custom_objects, "iris"))
    assert after["status"] == "True"
    assert after["lastTransitionTime"] == first["lastTransitionTime"]
