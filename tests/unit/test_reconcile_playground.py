from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from podium_operator.reconcile.conditions import set_condition
from podium_operator.reconcile.playground import reconcile_playground

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples/playground.yaml").read_text())["spec"]


def test_valid_spec_is_ready_with_observed_generation():
    outcome = reconcile_playground(SPEC, generation=3, status={}, now=NOW)
    assert outcome.ready
    assert outcome.status_patch["observedGeneration"] == 3
    (ready,) = outcome.status_patch["conditions"]
    assert ready["type"] == "Ready" and ready["status"] == "True" and ready["observedGeneration"] == 3
    assert outcome.events == [("Normal", "Validated", outcome.message)]


def test_invalid_spec_is_not_ready_and_names_the_field():
    spec = {**SPEC, "primaryMetric": "rmse"}
    outcome = reconcile_playground(spec, generation=1, status={}, now=NOW)
    assert not outcome.ready
    assert outcome.reason == "InvalidSpec"
    assert "primaryMetric" in outcome.message and "accuracy" in outcome.message
    assert outcome.events[0][0] == "Warning"


def test_ready_again_posts_no_duplicate_event_and_keeps_transition_time():
    first = reconcile_playground(SPEC, generation=1, status={}, now=NOW)
    again = reconcile_playground(SPEC, generation=2, status=first.status_patch, now=NOW + timedelta(minutes=5))
    assert again.events == []
    assert again.status_patch["conditions"][0]["lastTransitionTime"] == first.status_patch["conditions"][0][
        "lastTransitionTime"]


def test_condition_transition_time_moves_only_on_flip():
    conditions = set_condition(None, type_="Ready", status=False, reason="A", message="", now=NOW, generation=1)
    later = NOW + timedelta(seconds=30)
    same = set_condition(conditions, type_="Ready", status=False, reason="B", message="m", now=later, generation=2)
    flipped = set_condition(same, type_="Ready", status=True, reason="C", message="", now=later, generation=2)
    assert same[0]["lastTransitionTime"] == conditions[0]["lastTransitionTime"]
    assert flipped[0]["lastTransitionTime"] != conditions[0]["lastTransitionTime"]
    assert [c["status"] for c in flipped] == ["True"]
    other = set_condition(flipped, type_="Other", status=None, reason="X", message="", now=NOW, generation=None)
    assert [c["type"] for c in other] == ["Ready", "Other"] and other[1]["status"] == "Unknown"
