"""Holdout readers and writers round-trip every supported format, and fail clearly otherwise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.data import read_features, read_labels, write_table
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
