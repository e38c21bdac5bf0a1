"""The real kopf operator reconciles Playgrounds in the local cluster, and survives restarts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import wait_for

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples/playground.yaml").read_text())
PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)


def _get(api, name: str) -> dict[str, Any]:
    return api.get_namespaced_custom_object(*PG, name)


def test_playground_becomes_ready_and_follows_generation(operator, custom_objects):
    custom_objects.create_namespaced_custom_object(*PG, copy.deepcopy(EXAMPLE))
    ready = wait_for(lambda: _ready(_get(custom_objects, "iris")), what="Ready condition")
    assert ready["status"] == "True" and ready["reason"] == "Validated"
    assert _get(custom_objects, "iris")["status"]["observedGeneration"] == 1

    custom_objects.patch_namespaced_custom_object(*PG, "iris", {"spec": {"primaryMetric": "f1_macro"}})
    wait_for(lambda: _get(custom_objects, "iris")["status"].get("observedGeneration") == 2, what="generation 2")
    assert "f1_macro" in _ready(_get(custom_objects, "iris"))["message"]


def test_invalid_spec_is_reported_not_ready(operator, custom_objects):
    body = copy.deepcopy(EXAMPLE)
    body["metadata"]["name"] = "broken"
    custom_objects.create_namespaced_custom_object(*PG, body)
    # The CRD schema accepts this edit (CEL runs only in real API servers); the operator must catch it.
    custom_objects.patch_namespaced_custom_object(*PG, "broken", {"spec": {"primaryMetric": "rmse"}})
    ready = wait_for(
        lambda: (c := _ready(_get(custom_objects, "broken"))) and c["status"] == "False" and c, what="Ready=False"
    )
    assert ready["reason"] == "InvalidSpec" and "primaryMetric" in ready["message"]


def test_restart_keeps_status_and_handles_changes_made_while_down(operator, custom_objects):
    custom_objects.create_namespaced_custom_object(*PG, copy.deepcopy(EXAMPLE))
    wait_for(lambda: _ready(_get(custom_objects, "iris")), what="Ready")
    first = _ready(_get(custom_objects, "iris"))

    operator.stop(kill=True)
    custom_objects.patch_namespaced_custom_object(*PG, "iris", {"spec": {"primaryMetric": "balanced_accuracy"}})
    operator.start()

    wait_for(lambda: _get(custom_objects, "iris")["status"].get("observedGeneration") == 2, what="resume")
    after = _ready(_get(custom_objects, "iris"))
    assert after["status"] == "True"
    assert after["lastTransitionTime"] == first["lastTransitionTime"]
    assert "Traceback" not in operator.output()
