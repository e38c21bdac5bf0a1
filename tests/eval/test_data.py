"""Holdout readers and writers round-trip every supported format, read labels for the task, and fail clearly."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.data import label_header, read_column, read_features, read_labels, write_table
from podium.errors import InvalidHoldout

FEATURES = pd.DataFrame({"age": [31, 45, 22], "city": ["Oslo", "Lima", "Pune"], "score": [0.5, 1.25, -3.0]})
pyarrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")


@pytest.mark.parametrize("suffix", [".csv", pytest.param(".parquet", marks=pyarrow)])
def test_feature_frames_round_trip(tmp_path: Path, suffix: str) -> None:
    path = write_table(FEATURES, tmp_path / f"features{suffix}")
    pd.testing.assert_frame_equal(read_features(path), FEATURES, check_dtype=False)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_feature_arrays_round_trip(tmp_path: Path, suffix: str) -> None:
    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    loaded = read_features(write_table(array, tmp_path / f"features{suffix}"))
    assert isinstance(loaded, np.ndarray) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz", pytest.param(".parquet", marks=pyarrow)])
@pytest.mark.parametrize(
    "labels", [np.array(["cat", "dog", "cat"]), np.array([3, 1, 2]), np.array([0.5, 1.5, 2.0])]
)
def test_labels_round_trip(tmp_path: Path, suffix: str, labels: np.ndarray) -> None:
    loaded = read_labels(write_table(labels, tmp_path / f"labels{suffix}"))
    assert loaded.ndim == 1
    np.testing.assert_array_equal(loaded.astype(labels.dtype), labels)


def test_pandas_series_and_object_arrays_are_written_without_pickles(tmp_path: Path) -> None:
    series = pd.Series(["a", "b"], dtype=object, name="target")
    np.testing.assert_array_equal(read_labels(write_table(series, tmp_path / "y.npy")), ["a", "b"])
    np.testing.assert_array_equal(read_labels(write_table(series, tmp_path / "y.csv")), ["a", "b"])


def test_label_column_is_found_by_name(tmp_path: Path) -> None:
    (tmp_path / "y.csv").write_text("id,target\n1,a\n2,b\n")
    np.testing.assert_array_equal(read_labels(tmp_path / "y.csv"), ["a", "b"])


def test_named_arrays_in_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "holdout.npz", X=np.ones((2, 2)), y=np.array([1, 0]))
    np.testing.assert_array_equal(read_labels(tmp_path / "holdout.npz"), [1, 0])
    np.testing.assert_array_equal(read_features(tmp_path / "holdout.npz"), np.ones((2, 2)))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("y.csv", "id,colour\n1,a\n", "none is named"),
        ("y.csv", "", "cannot read"),
        ("y.txt", "a\n", "unsupported file type"),
        ("y.npy", "not numpy", "cannot read"),
        ("y.npz", None, "none named"),
        ("y.npy", "matrix", "not one label per row"),
    ],
)
def test_bad_label_files(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is None:
        np.savez(path, a=np.ones(2), b=np.ones(2))
    elif content == "matrix":
        np.save(path, np.ones((2, 2)))
    else:
        path.write_text(content)
    with pytest.raises(InvalidHoldout, match=message) as raised:
        read_labels(path)
    assert raised.value.field == "labels" and raised.value.hint


def test_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "y.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidHoldout, match="cannot read"):
        read_labels(tmp_path / "y.npy")


def test_missing_labels_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidHoldout, match="does not exist") as raised:
        read_labels(tmp_path / "labels.csv")
    assert "Fix:" in str(raised.value)


def test_parquet_without_pyarrow_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    with pytest.raises(InvalidHoldout, match="pyarrow") as raised:
        read_features(tmp_path / "x.parquet")
    assert "pip install pyarrow" in str(raised.value)
    with pytest.raises(InvalidHoldout, match="pyarrow"):
        write_table(FEATURES, tmp_path / "y.parquet")


# Labels are read for the playground's task: text, exactly as written, for classification; numbers for regression.

@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("label\nNA\nNone\nnull\nNaN\n", ["NA", "None", "null", "NaN"]),  # class names, not missing values
        ("label\n01\n02\n10\n", ["01", "02", "10"]),  # not the integers 1, 2, 10
        ("label\n1\n1.0\n True\n", ["1", "1.0", " True"]),  # what was written, nothing else
        ("id,label\n7,cat\n8,\n", ["cat", ""]),  # an empty cell is a missing label, reported later
        ("label\ncat\n\ndog\n", ["cat", "", "dog"]),  # so is a blank line: the rows keep their places
    ],
)
def test_classification_labels_are_read_as_written(tmp_path: Path, content: str, expected: list[str]) -> None:
    (tmp_path / "y.csv").write_text(content)
    labels = read_labels(tmp_path / "y.csv", task="classification")
    assert labels.dtype.kind == "U" and labels.tolist() == expected


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([1, 0, 2]), ["1", "0", "2"]),
        (np.array([1.0, 0.0, 2.5]), ["1", "0", "2.5"]),
        (np.array([True, False]), ["True", "False"]),
        (np.array([1.0, np.nan]), ["1", ""]),
        (np.array(["a", "b"]), ["a", "b"]),
    ],
)
def test_classification_labels_from_arrays_become_the_text_they_denote(
    tmp_path: Path, array: np.ndarray, expected: list[str]
) -> None:
    np.save(tmp_path / "y.npy", array)
    assert read_labels(tmp_path / "y.npy", task="classification").tolist() == expected


@pytest.mark.parametrize("suffix", [".csv", ".npy", pytest.param(".parquet", marks=pyarrow)])
def test_regression_labels_are_numbers(tmp_path: Path, suffix: str) -> None:
    labels = read_labels(write_table(np.array([0.5, 2.0, -3.25]), tmp_path / f"y{suffix}"), task="regression")
    assert labels.dtype == np.float64 and labels.tolist() == [0.5, 2.0, -3.25]
    (tmp_path / "text.csv").write_text("target\n1.5\n\nNA\n2\n")
    read = read_labels(tmp_path / "text.csv", task="regression")
    assert read[[0, 3]].tolist() == [1.5, 2.0] and np.isnan(read[[1, 2]]).all()  # missing: reported later


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_text_labels_on_a_regression_playground_are_refused(tmp_path: Path, suffix: str) -> None:
    path = write_table(np.array(["1.5", "cat", "2"]), tmp_path / f"y{suffix}")
    with pytest.raises(InvalidHoldout, match="regression playground needs numbers") as raised:
        read_labels(path, task="regression")
    assert raised.value.field == "labels" and "'cat' (row 1)" in str(raised.value)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
                min_size=1, max_size=30))
def test_any_text_class_labels_survive_a_csv_round_trip(labels: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = write_table(np.array(labels, dtype=object), Path(scratch) / "y.csv")
        assert read_labels(path, task="classification").tolist() == labels


def test_label_header_names_the_label_column_of_a_csv(tmp_path: Path) -> None:
    (tmp_path / "y.csv").write_text("cat\ndog\ncat\n")
    assert label_header(tmp_path / "y.csv") == "cat"  # headerless: the holdout check reports it
    (tmp_path / "z.csv").write_text("id,target\n1,a\n")
    assert label_header(tmp_path / "z.csv") == "target"
    np.save(tmp_path / "y.npy", np.array([1, 2]))
    assert label_header(tmp_path / "y.npy") is None


def test_read_column_reads_an_id_column_as_written(tmp_path: Path) -> None:
    (tmp_path / "y.csv").write_text("id,label\n007,a\nNA,b\n")
    ids = read_column(tmp_path / "y.csv", "id", field="labels")
    assert ids is not None and ids.tolist() == ["007", "NA"]
    assert read_column(tmp_path / "y.csv", "row", field="labels") is None
