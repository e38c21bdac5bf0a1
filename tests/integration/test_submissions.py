"""Submissions end to end in the local cluster: real operator, real Jobs as processes, real object store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from podium import storage
from podium.client import ModelPlayground

from tests.integration.holdouts import IRIS_CLASSES, iris_playground, iris_split, upload_holdout

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
    board = playground.get_leaderboard()
    assert list(board["submission"]) == ["preds"] and board["accuracy"][0] == pytest.approx(expected)
    assert set(IRIS_CLASSES) >= set(predictions)
