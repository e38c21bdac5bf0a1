from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from podium_operator.reconcile.conditions import set_condition
from podium_operator.reconcile.playground import holdout_sync, reconcile_playground

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


def test_the_deadline_passing_posts_one_competition_closed_event():
    spec = {**SPEC, "competition": {"deadline": "2026-11-21T12:30:00Z"}}
    before = reconcile_playground(spec, generation=1, status={}, now=NOW)
    assert before.status_patch["competitionClosed"] is False
    assert "CompetitionClosed" not in [reason for _, reason, _ in before.events]
    after = reconcile_playground(spec, generation=1, status=before.status_patch, now=NOW + timedelta(hours=1))
    assert after.status_patch["competitionClosed"] is True
    ((kind, reason, message),) = after.events
    assert (kind, reason) == ("Normal", "CompetitionClosed") and "deadline" in message and "private" in message
    later = reconcile_playground(spec, generation=1, status=after.status_patch, now=NOW + timedelta(hours=2))
    assert later.events == []


def test_holdout_sync_reports_a_changed_or_missing_source_once_per_change():
    status = {"holdout": {"sha256": "a" * 64}, "conditions": []}
    same = holdout_sync(status, source_sha256="a" * 64, now=NOW, generation=1)
    ((condition,),) = [[c for c in same.conditions if c["type"] == "HoldoutInSync"]]
    assert condition["status"] == "True" and same.events == []

    changed = holdout_sync({**status, "conditions": same.conditions}, source_sha256="b" * 64, now=NOW, generation=1)
    (event,) = changed.events
    assert event[:2] == ("Warning", "HoldoutSourceChanged") and "snapshot" in event[2] and "new Playground" in event[2]
    again = holdout_sync({**status, "conditions": changed.conditions}, source_sha256="b" * 64, now=NOW, generation=1)
    assert again.events == [] and again.conditions == changed.conditions

    gone = holdout_sync({**status, "conditions": again.conditions}, source_sha256=None, now=NOW, generation=1,
                        problem="labels.csv does not exist")
    assert [e[1] for e in gone.events] == ["HoldoutSourceMissing"] and "labels.csv does not exist" in gone.events[0][2]
