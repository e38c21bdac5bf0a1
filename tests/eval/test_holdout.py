"""A Playground is Ready only when its holdout can score: each broken holdout is refused, naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from podium.api.playground import PlaygroundSpec
from podium.data import write_table
from podium.errors import InvalidHoldout
from podium.holdout import Holdout, check_holdout, check_parts, prepare
from podium.split import compute_split

CLASSES = ["cat", "dog", "eel"]


def _spec(**overrides: Any) -> PlaygroundSpec:
    spec: dict[str, Any] = {"task": "classification", "holdout": {"features": "s3://b/x.csv", "labels": "s3://b/labels.csv"},
                            "classLabels": CLASSES, "primaryMetric": "accuracy"}
    for key, value in overrides.items():
        if value is None:
            spec.pop(key, None)
        elif isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return PlaygroundSpec.model_validate(spec)


def _regression(**overrides: Any) -> PlaygroundSpec:
    return _spec(**{"task": "regression", "classLabels": None, "primaryMetric": "mse", **overrides})


def _files(tmp_path: Path, features: Any, labels: Any) -> tuple[Path, Path]:
    """Write the holdout; ``labels`` given as a str is written verbatim (e.g. a CSV without a header)."""
    x = write_table(pd.DataFrame(features), tmp_path / "x.csv")
    y = tmp_path / "labels.csv"
    if isinstance(labels, str):
        y.write_text(labels)
    else:
        write_table(np.asarray(labels), y)
    return x, y


def _refused(tmp_path: Path, features: Any, labels: Any, spec: PlaygroundSpec) -> InvalidHoldout:
    with pytest.raises(InvalidHoldout) as raised:
        prepare(*_files(tmp_path, features, labels), spec)
    assert raised.value.hint, "every refusal says how to fix it"
    return raised.value


FEATURES = {"a": np.arange(30) % 7, "b": np.linspace(0, 1, 30)}
LABELS = np.array(CLASSES * 10)


def test_a_good_holdout_is_prepared_with_its_split(tmp_path: Path) -> None:
    prepared = prepare(*_files(tmp_path, FEATURES, LABELS), _spec(competition={"privateFraction": 0.3}))
    assert prepared.split is not None and len(prepared.split.private) == 9
    assert prepared.holdout.labels.tolist() == LABELS.tolist()


def test_features_and_labels_with_different_row_counts(tmp_path: Path) -> None:
    error = _refused(tmp_path, FEATURES, LABELS[:27], _spec())
    assert error.field == "holdout" and "30 rows" in str(error) and "27" in str(error)


@pytest.mark.parametrize(
    ("labels", "spec"),
    [
        ("\n".join(LABELS) + "\n", _spec()),  # its first label became the header
        ("\n".join(str(v) for v in np.linspace(1, 2, 30)) + "\n", _regression()),
    ],
)
def test_a_labels_csv_without_a_header_row(tmp_path: Path, labels: str, spec: PlaygroundSpec) -> None:
    error = _refused(tmp_path, FEATURES, labels, spec)
    assert error.field == "holdout.labels" and "labels.csv has no header row" in str(error)
    assert "header line" in str(error)


def test_a_header_named_like_a_class_is_just_a_header_when_no_row_is_missing(tmp_path: Path) -> None:
    spec = _spec(classLabels=["0", "1"])
    labels = "0\n" + "\n".join(["0", "1"] * 15) + "\n"  # pandas' header of an unnamed Series is "0"
    prepared = prepare(*_files(tmp_path, FEATURES, labels), spec)
    assert prepared.holdout.labels_header == "0" and len(prepared.holdout.labels) == 30


@pytest.mark.parametrize(
    ("labels", "spec", "message"),
    [
        ("label\n" + "cat\n" * 10 + "\n" + "dog\n" * 19, _spec(), "1 row have no label"),
        ("id,label\n" + "".join(f"{i},{'' if i == 4 else 'eel'}\n" for i in range(30)), _spec(), "first rows [4]"),
        ("y\n" + "1.5\n" * 28 + "NaN\n\n", _regression(), "2 rows have no finite target"),
    ],
)
def test_empty_or_nan_labels(tmp_path: Path, labels: str, spec: PlaygroundSpec, message: str) -> None:
    error = _refused(tmp_path, FEATURES, labels, spec)
    assert error.field == "holdout.labels" and message in str(error)


def test_labels_outside_class_labels(tmp_path: Path) -> None:
    labels = LABELS.copy()
    labels[5] = "cow"
    error = _refused(tmp_path, FEATURES, labels, _spec())
    assert error.field == "holdout.labels" and "'cow'" in str(error) and "classLabels" in str(error)


def test_class_names_that_look_missing_or_numeric_are_classes(tmp_path: Path) -> None:
    spec = _spec(classLabels=["NA", "None", "01"])
    prepared = prepare(*_files(tmp_path, FEATURES, np.array(["NA", "None", "01"] * 10)), spec)
    assert sorted(set(prepared.holdout.labels)) == ["01", "NA", "None"]


def test_duplicate_class_labels_are_refused_by_the_schema_walker_the_model_and_the_check() -> None:
    from podium.api.validation import manifest_problems

    manifest = {"apiVersion": "podium.dev/v1alpha1", "kind": "Playground", "metadata": {"name": "pg"},
                "spec": {**_spec().to_wire(), "classLabels": ["cat", "dog", "cat"]}}
    # The walker behind `podium validate` and local mode's API server, worded as the API server does.
    assert manifest_problems(manifest) == ['spec.classLabels[2]: Duplicate value: "cat"']
    with pytest.raises(ValidationError, match="'cat' listed more than once"):
        _spec(classLabels=["cat", "dog", "cat"])
    spec = _spec().model_copy(update={"class_labels": ["cat", "dog", "cat"]})
    with pytest.raises(InvalidHoldout, match="more than once") as raised:
        check_holdout(Holdout(pd.DataFrame(FEATURES), LABELS), spec)
    assert raised.value.field == "classLabels"


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_string_labels_on_a_regression_playground(tmp_path: Path, suffix: str) -> None:
    x = write_table(pd.DataFrame(FEATURES), tmp_path / "x.csv")
    y = write_table(LABELS, tmp_path / f"labels{suffix}")
    with pytest.raises(InvalidHoldout, match="regression playground needs numbers") as raised:
        prepare(x, y, _regression())
    assert raised.value.field == "holdout.labels"
    with pytest.raises(InvalidHoldout, match="text labels such as 'cat'"):
        check_holdout(Holdout(pd.DataFrame(FEATURES), LABELS), _regression())


def test_r2_needs_two_rows_on_the_public_part(tmp_path: Path) -> None:
    features, targets = {"a": [1.0, 2.0, 3.0]}, np.array([0.5, 1.5, 2.5])
    error = _refused(tmp_path, features, targets, _regression(primaryMetric="r2", competition={"privateFraction": 0.6}))
    assert error.field == "primaryMetric" and "public part, which has 1 row" in str(error)
    assert "competition.privateFraction" in str(error)
    assert prepare(*_files(tmp_path, features, targets), _regression(primaryMetric="mse",
                                                                      competition={"privateFraction": 0.6}))
    error = _refused(tmp_path, {"a": [1.0]}, np.array([0.5]), _regression(primaryMetric="r2"))
    assert "undefined on the holdout, which has 1 row" in str(error)


def test_roc_auc_needs_two_classes_present_in_each_part() -> None:
    labels = np.array(["cat", "dog"])
    split = compute_split(labels, private_fraction=0.5, seed=0)
    with pytest.raises(InvalidHoldout, match="needs at least 2 classes present") as raised:
        check_parts(labels, _spec(primaryMetric="roc_auc", classLabels=["cat", "dog"]), split)
    assert raised.value.field == "primaryMetric"
    check_parts(labels, _spec(primaryMetric="accuracy", classLabels=["cat", "dog"]), split)


def test_a_holdout_too_small_for_two_non_empty_parts(tmp_path: Path) -> None:
    error = _refused(tmp_path, {"a": [1, 2]}, np.array(["cat", "dog"]), _spec(competition={"privateFraction": 0.8}))
    assert error.field == "holdout.labels" and "empty public part" in str(error)
    assert "competition.privateFraction" in str(error)


def test_an_id_column_must_exist_and_be_unique(tmp_path: Path) -> None:
    spec = _spec(holdout={"idColumn": "row"}, competition={})
    error = _refused(tmp_path, FEATURES, LABELS, spec)
    assert error.field == "holdout.idColumn" and "no column 'row'" in str(error)
    labels = "row,label\n" + "".join(f"{i % 29},{label}\n" for i, label in enumerate(LABELS))
    error = _refused(tmp_path, FEATURES, labels, spec)
    assert error.field == "holdout.idColumn" and "repeats ids such as ['0']" in str(error)


def _private_ids(tmp_path: Path, order: np.ndarray, spec: PlaygroundSpec, name: str) -> set[str]:
    ids = np.array([f"r{i:03d}" for i in range(30)])
    folder = tmp_path / name
    folder.mkdir()
    labels = "row,label\n" + "".join(f"{ids[i]},{LABELS[i]}\n" for i in order)
    features = {key: np.asarray(value)[order] for key, value in FEATURES.items()}
    prepared = prepare(*_files(folder, features, labels), spec)
    assert prepared.split is not None
    return set(ids[order][prepared.split.private])


@pytest.mark.parametrize("id_column", ["row", None])
def test_a_shuffled_holdout_keeps_every_row_on_its_side(tmp_path: Path, id_column: str | None) -> None:
    spec = _spec(holdout={"idColumn": id_column}, competition={"privateFraction": 0.4, "seed": 5})
    order = np.random.default_rng(1).permutation(30)
    first = _private_ids(tmp_path, np.arange(30), spec, "first")
    assert len(first) == 12 and _private_ids(tmp_path, order, spec, "shuffled") == first
