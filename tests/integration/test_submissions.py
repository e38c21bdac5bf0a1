"""Submissions end to end in the local cluster: real operator, real Jobs as processes, real object store."""

from __future__ import annotations

import json

import numpy as np
import pytest

from podium import storage
from podium.client import ModelPlayground
from tests.helpers import free_port, wait_for
from tests.integration.holdouts import IRIS_CLASSES, iris_playground, iris_split, upload_holdout

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


@pytest.fixture
def iris(cluster, custom_objects):
    X_train, X_test, y_train, y_test = iris_split()
    holdout = upload_holdout(X_test, y_test, "s3://podium/holdouts/iris")
    custom_objects.create_namespaced_custom_object(
        *PG, iris_playground("iris", *holdout, competition={"privateFraction": 0.5, "seed": 3, "quotaPerDay": 3}))
    playground = ModelPlayground("iris")
    playground.wait_ready()
    return playground, (X_train, X_test, y_train, y_test)


def test_predictions_only_submission_is_scored_unverified(iris):
    playground, (_, X_test, _, y_test) = iris
    predictions = np.array(y_test, dtype=object)
    predictions[:6] = "setosa"  # a few mistakes, so the score is not trivially 1
    split = json.loads(storage.read_bytes(playground.get()["status"]["split"]["uri"]))
    public = np.array(split["public"])
    expected = float(np.mean(predictions[public] == y_test[public]))
    playground.submit_predictions(predictions, name="preds", track="experiment")
    (sub,) = playground.wait_for("preds", timeout=60)
    status = sub["status"]
    assert status["phase"] == "Evaluated", status.get("message")
    assert status["version"] == 1 and status["verified"] is False
    assert status["score"] == pytest.approx(expected)
    wait_for(lambda: playground.get()["status"].get("leaderboard"), what="leaderboard row")
    board = playground.get_leaderboard()
    assert list(board["submission"]) == ["preds"] and board["accuracy"][0] == pytest.approx(expected)
    assert set(IRIS_CLASSES) >= set(predictions)


def _predict_all(y_test, wrong: int = 0):
    predictions = np.array(y_test, dtype=object)
    predictions[:wrong] = np.where(predictions[:wrong] == "setosa", "virginica", "setosa")
    return predictions


def test_quota_and_deadline_reject_with_reason(iris, custom_objects):
    playground, (_, _, _, y_test) = iris
    for index in range(4):
        playground.submit_predictions(_predict_all(y_test, index), name=f"c{index}", track="competition")
    results = {s["metadata"]["name"]: s["status"] for s in playground.wait_for("c0", "c1", "c2", "c3", timeout=90)}
    phases = sorted(status["phase"] for status in results.values())
    assert phases == ["Evaluated", "Evaluated", "Evaluated", "Rejected"]
    (rejected,) = [status for status in results.values() if status["phase"] == "Rejected"]
    assert "quota 3" in rejected["message"] and "version" not in rejected
    # Versions are unique and dense among admitted submissions.
    assert sorted(s["version"] for s in results.values() if s["phase"] == "Evaluated") == [1, 2, 3]

    custom_objects.patch_namespaced_custom_object(
        *PG, "iris", {"spec": {"competition": {"deadline": "2020-01-01T00:00:00Z", "quotaPerDay": 100}}})
    wait_for(lambda: playground.get()["status"].get("competitionClosed"), what="competition closed")
    playground.submit_predictions(_predict_all(y_test), name="late", track="competition")
    (late,) = playground.wait_for("late", timeout=60)
    assert late["status"]["phase"] == "Rejected" and "deadline" in late["status"]["message"]


def test_private_scores_stay_private_until_close(iris, custom_objects, core):
    playground, (_, _, _, y_test) = iris
    playground.submit_predictions(_predict_all(y_test, 2), name="alice", track="competition")
    playground.submit_predictions(_predict_all(y_test, 9), name="bob", track="competition")
    playground.wait_for("alice", "bob", timeout=90)

    # Nothing a participant can read (Submissions, the Playground, Events) holds a private score.
    # Kept by uid (of the Playground, then of the Submission): a re-created name never reads these.
    pg_uid = playground.get()["metadata"]["uid"]
    private = {name: json.loads(storage.read_bytes(
        f"s3://podium/podium-private/default/iris/{pg_uid}/scores/{playground.submission(name)['metadata']['uid']}.json"
    ))["private"] for name in ("alice", "bob")}
    submissions = [playground.submission("alice"), playground.submission("bob")]
    readable = json.loads(json.dumps([*submissions, playground.get(), core.list_namespaced_event("default").to_dict()],
                                     default=str))
    assert "private" not in json.dumps(playground.submission("alice")["status"])
    assert playground.get()["status"].get("privateLeaderboard") is None
    published = _numbers_by_key(readable)
    public = {(metric, value) for s in submissions for metric, value in s["status"]["metrics"].items()}
    leaked = {(metric, value) for name in private for metric, value in private[name].items()} & (published - public)
    assert not leaked, f"private scores readable by participants: {leaked}"
    assert ("accuracy", submissions[0]["status"]["metrics"]["accuracy"]) in published  # the check sees metrics

    playground.close_competition()
    board = wait_for(lambda: playground.get()["status"].get("privateLeaderboard"), what="private leaderboard")
    assert [row["submission"] for row in board] == sorted(private, key=lambda n: -private[n]["accuracy"])
    assert {row["submission"]: row["score"] for row in board} == {n: private[n]["accuracy"] for n in private}
    assert not playground.get_leaderboard(private=True).empty


def test_events_and_prometheus_metrics_follow_the_submission(iris, core, cluster):
    import urllib.request

    playground, (_, _, _, y_test) = iris
    port = free_port()
    cluster.stop_operator()
    cluster.metrics_port = port
    cluster.start_operator()
    playground.submit_predictions(np.asarray(y_test, dtype=object), name="watched")
    playground.wait_for("watched", timeout=90)
    wait_for(lambda: playground.get()["status"].get("leaderboard"), what="leaderboard")

    def reasons() -> set[str]:
        events = core.list_namespaced_event("default").items
        return {e.reason for e in events if e.involved_object.name == "watched"}

    assert wait_for(lambda: {"Accepted", "Scored"} <= reasons() and reasons(), what="Accepted and Scored events")
    scraped = wait_for(lambda: _scrape(urllib.request, port), what="the metrics endpoint")
    assert 'podium_submissions_total{namespace="default",phase="Evaluated",playground="iris"} 1.0' in scraped
    assert 'podium_evaluation_duration_seconds_count{namespace="default",outcome="Evaluated",playground="iris"} 1.0' in scraped
    assert 'podium_leaderboard_best_score{namespace="default",playground="iris"}' in scraped
    assert "podium_evaluation_queue_depth 0.0" in scraped


def _scrape(request_module, port: int) -> str | None:
    try:
        with request_module.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def _numbers_by_key(value: object, key: str = "") -> set[tuple[str, float]]:
    """Every (field name, number) pair anywhere in a JSON document."""
    if isinstance(value, dict):
        return set().union(*(_numbers_by_key(v, str(k)) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(_numbers_by_key(v, key) for v in value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {(key, float(value))}
    return set()
