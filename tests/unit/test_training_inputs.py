"""What a participant's training data can do to the trusted training Job: nothing but fail, naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from podium.data import write_table
from podium.errors import PodiumError
from podium.training import inputs
from podium.training.inputs import TrainingInputError, read_training_data


def _data(tmp_path: Path, features, labels) -> tuple[str, str]:
    return (str(write_table(np.asarray(features), tmp_path / "x.csv")),
            str(write_table(np.asarray(labels), tmp_path / "y.csv")))


def test_data_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    features, labels = _data(tmp_path, np.zeros((200, 20)), np.zeros(200))
    monkeypatch.setattr(inputs, "MAX_DATA_BYTES", 1000)
    with pytest.raises(PodiumError) as error:
        read_training_data(features, labels, "regression", tmp_path)
    assert error.value.field == "data.features" and "larger than 1000 bytes" in str(error.value)


def test_rows_and_labels_that_do_not_match_are_refused(tmp_path):
    features, labels = _data(tmp_path, np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(TrainingInputError, match=r"^data\.labels: .*10 rows but the labels 9"):
        read_training_data(features, labels, "regression", tmp_path)


@pytest.mark.parametrize(("values", "problem"), [(np.full((25, 64), np.nan), "NaN"), (np.ones((25, 3)), "columns")])
def test_meta_learning_refuses_features_it_cannot_reshape_or_that_are_not_finite(values, problem):
    from podium.training.meta import _support

    with pytest.raises(TrainingInputError, match=rf"^data\.features: .*{problem}"):
        _support(values, np.array(["a"] * 25), ["a"], "classification", (1, 8, 8))


def test_meta_learning_refuses_labels_outside_the_playgrounds_classes_or_a_class_without_a_shot():
    from podium.training.meta import _support

    rows = np.zeros((4, 64), dtype=np.float32)
    with pytest.raises(TrainingInputError, match=r"^data\.labels: labels \['z'\] are not among"):
        _support(rows, np.array(["a", "b", "z", "a"]), ["a", "b"], "classification", (1, 8, 8))
    with pytest.raises(TrainingInputError, match=r"^data\.labels: no training example of classes \['c'\]"):
        _support(rows, np.array(["a", "b", "a", "b"]), ["a", "b", "c"], "classification", (1, 8, 8))
