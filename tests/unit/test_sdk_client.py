"""The SDK client's pure parts: leaderboard rows as DataFrame columns, and its own checks' one-line errors."""

from __future__ import annotations

import pytest

from podium.api import PLAYGROUND, SUBMISSION
from podium.client import _flat, _validated
from podium.errors import InvalidConfig


def test_a_leaderboard_row_is_flat_with_custom_metadata_as_columns():
    row = {"rank": 1, "version": 3, "submission": "logreg", "score": 0.9, "metrics": {"accuracy": 0.9},
           "metadata": {"model_type": "LogisticRegression"},
           "customMetadata": {"lr": 0.1, "augmented": True, "notes": "v2", "rank": 7}}
    assert _flat(row) == {"rank": 1, "version": 3, "submission": "logreg", "score": 0.9, "accuracy": 0.9,
                          "model_type": "LogisticRegression", "lr": 0.1, "augmented": True, "notes": "v2",
                          "custom.rank": 7}  # a clash with a column of the board keeps both
    assert _flat({"rank": 1, "version": 1, "submission": "s"}) == {"rank": 1, "version": 1, "submission": "s"}


def test_the_sdk_names_every_bad_field_in_one_line_before_anything_is_uploaded():
    with pytest.raises(InvalidConfig) as raised:
        _validated(PLAYGROUND, "iris", {"task": "classification", "primaryMetric": "accuracy", "classLabels": ["a", "b"],
                                        "holdout": {"features": "s3://b/f.csv"}, "competition": {"privateFraction": "half"}})
    message = str(raised.value)
    assert "\n" not in message and message.startswith("playground iris is invalid: ")
    assert "spec.holdout.labels: Field required" in message and "spec.competition.privateFraction" in message
    with pytest.raises(InvalidConfig, match="metadata"):
        _validated(SUBMISSION, "s", {"playground": "iris", "track": "experiment",
                                     "predictions": {"uri": "s3://b/p.npz"}, "metadata": {"nested": {"a": 1}}})
    _validated(SUBMISSION, "s", {"playground": "iris", "track": "experiment", "predictions": {"uri": "s3://b/p.npz"},
                                 "metadata": {"lr": 0.1, "epochs": 3, "augmented": True, "notes": "v2"}})


def test_a_wait_timeout_is_a_timeout_error_and_pickles():
    import pickle

    from podium.errors import WaitTimeout

    error = WaitTimeout("timed out after 5s waiting for playground iris to become Ready", hint="wait longer")
    assert isinstance(error, TimeoutError) and isinstance(error, ValueError)
    assert str(pickle.loads(pickle.dumps(error))) == str(error) == (
        "timed out after 5s waiting for playground iris to become Ready. Fix: wait longer")
