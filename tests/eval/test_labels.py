"""Predictions and holdout labels match the playground's classes by value, numbers by the number they denote."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import InvalidPredictions
from podium.metrics.labels import class_list, encode


def _codes(values: object, classes: list[str]) -> list[int]:
    return encode(values, class_list(classes), field="predictions.labels", error=InvalidPredictions).tolist()


@pytest.mark.parametrize(
    ("values", "classes", "codes"),
    [
        (np.array(["1.0", "0.0", "1"]), ["0", "1"], [1, 0, 1]),  # predicted "1.0" is class "1"
        (np.array([1.0, 2.0]), ["01", "02"], [0, 1]),
        (np.array([1, 2]), ["01", "02"], [0, 1]),
        (np.array(["2", "1e0"]), ["01", "02"], [1, 0]),
        (np.array(["NA", "None"]), ["NA", "None"], [0, 1]),
        (np.array(["1.0", "1"]), ["1", "1.0"], [1, 0]),  # an exact match wins over a numeric one
    ],
)
def test_numbers_match_the_class_denoting_the_same_number(values: np.ndarray, classes: list[str],
                                                          codes: list[int]) -> None:
    assert _codes(values, classes) == codes


@pytest.mark.parametrize(
    ("values", "classes"),
    [
        (np.array(["1.0"]), ["1", "01"]),  # two classes denote 1: ambiguous, so not matched
        (np.array(["3"]), ["1", "2"]),
        (np.array(["nan"]), ["1", "2"]),
        (np.array(["one"]), ["1", "2"]),
    ],
)
def test_values_matching_no_class_or_several_are_rejected(values: np.ndarray, classes: list[str]) -> None:
    with pytest.raises(InvalidPredictions, match="not among the playground's classes"):
        _codes(values, classes)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-1000, 1000), min_size=2, max_size=20, unique=True), st.data())
def test_any_spelling_of_an_integer_class_matches_it(numbers: list[int], data: st.DataObject) -> None:
    classes = [str(n) for n in numbers]
    picked = data.draw(st.lists(st.sampled_from(range(len(numbers))), min_size=1, max_size=30))
    spellings = [data.draw(st.sampled_from([str(numbers[i]), f"{numbers[i]}.0", f"{float(numbers[i]):e}"]))
                 for i in picked]
    assert _codes(np.array(spellings), classes) == picked
    assert _codes(np.array([float(numbers[i]) for i in picked]), classes) == picked


def test_the_score_step_reads_class_names_as_written_and_matches_numbers(tmp_path) -> None:
    from podium.evaluation.score import run_score
    from podium.predictions import Predictions, save_predictions

    (tmp_path / "labels.csv").write_text("label\nNA\nNone\n01\n02\nNA\n")
    predicted = np.array(["NA", "None", "1.0", "2", "None"])  # "1.0" and "2" denote classes "01" and "02"
    predictions = save_predictions(Predictions(predicted), tmp_path / "predictions.npz")
    result = run_score(predictions, tmp_path / "labels.csv", task="classification",
                       class_labels=["NA", "None", "01", "02"], split=None, out_dir=tmp_path / "out")
    assert result.all["accuracy"] == pytest.approx(0.8)
