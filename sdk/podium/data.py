"""Read and write holdout tables: CSV, Parquet (with pyarrow), NumPy ``.npy`` and ``.npz``.

The format is chosen by file suffix. CSV and Parquet files have a header; a labels file is its only
column, or the column named ``label``/``labels``/``target``/``y``. ``.npz`` archives hold one array,
or name it ``features``/``X`` (features) or ``labels``/``y`` (labels). Nothing is ever unpickled.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podium.errors import InvalidHoldout

SUFFIXES = (".csv", ".parquet", ".pq", ".npy", ".npz")
LABEL_COLUMNS = ("label", "labels", "target", "y")
FEATURE_KEYS = ("features", "X")


def read_features(path: str | Path) -> pd.DataFrame | np.ndarray:
    """Holdout features: a DataFrame for CSV/Parquet, an array for ``.npy``/``.npz``."""
    path = _existing(path, field="features")
    suffix = _suffix(path, field="features")
    if suffix in (".npy", ".npz"):
        return _read_array(path, keys=FEATURE_KEYS, field="features")
    return _read_frame(path, field="features")


def read_labels(path: str | Path) -> np.ndarray:
    """Holdout labels as a 1-D array."""
    path = _existing(path, field="labels")
    suffix = _suffix(path, field="labels")
    if suffix in (".npy", ".npz"):
        labels = _read_array(path, keys=("labels", "y"), field="labels")
    else:
        labels = _label_column(_read_frame(path, field="labels"), path)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise InvalidHoldout(f"{path.name} holds an array of shape {labels.shape}, not one label per row",
                             field="labels", hint="store a 1-D array of labels")
    return labels


def write_table(data: pd.DataFrame | np.ndarray | pd.Series, path: str | Path) -> Path:
    """Write ``data`` in the format named by ``path``'s suffix; 1-D data becomes a ``label`` column."""
    path = Path(path)
    suffix = _suffix(path, field="path")
    if suffix == ".npy":
        np.save(path, _array(data), allow_pickle=False)
    elif suffix == ".npz":
        with path.open("wb") as handle:
            if np.ndim(data) == 1:
                np.savez(handle, labels=_array(data))
            else:
                np.savez(handle, features=_array(data))
    else:
        frame = _frame(data)
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            _require_pyarrow(field="path")
            frame.to_parquet(path, index=False)
    return path


def _existing(path: str | Path, *, field: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InvalidHoldout(f"file {path} does not exist", field=field,
                             hint=f"check the {field} path or URI, and that the holdout was uploaded")
    return path


def _suffix(path: Path, *, field: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidHoldout(f"unsupported file type {path.name!r}", field=field,
                             hint=f"use one of {', '.join(SUFFIXES)}")
    return suffix


def _read_frame(path: Path, *, field: str) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        _require_pyarrow(field=field)
        return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:  # EmptyDataError is a ValueError
        raise InvalidHoldout(f"cannot read {path.name}: {error}", field=field,
                             hint="write the file with a header row, e.g. podium.data.write_table") from None


def _read_array(path: Path, *, keys: tuple[str, ...], field: str) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as archive:
            names = list(archive.keys())
            chosen = next((k for k in keys if k in names), names[0] if len(names) == 1 else None)
            if chosen is None:
                raise InvalidHoldout(f"{path.name} holds arrays {names}, none named {' or '.join(keys)}",
                                     field=field, hint=f"save the array under the name {keys[0]!r}")
            return archive[chosen]
    except InvalidHoldout:
        raise
    except (ValueError, OSError, EOFError) as error:
        raise InvalidHoldout(f"cannot read {path.name}: {error}", field=field,
                             hint="save plain (non-object) arrays with numpy.save/savez") from None


def _label_column(frame: pd.DataFrame, path: Path) -> np.ndarray:
    if frame.shape[1] == 1:
        return frame.iloc[:, 0].to_numpy()
    for name in LABEL_COLUMNS:
        if name in frame.columns:
            return frame[name].to_numpy()
    raise InvalidHoldout(
        f"{path.name} has columns {list(frame.columns)[:10]} and none is named {'/'.join(LABEL_COLUMNS)}",
        field="labels", hint="keep only the label column, or name it 'label'",
    )


def _require_pyarrow(*, field: str) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise InvalidHoldout("Parquet support needs the pyarrow package, which is not installed", field=field,
                             hint="pip install pyarrow, or use CSV/.npy/.npz")


def _array(data: Any) -> np.ndarray:
    array = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else np.asarray(data)
    # Object columns (pandas strings) become fixed-width unicode so no pickle is needed.
    return array.astype(str) if array.dtype == object else array


def _frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name or "label")
    array = np.asarray(data)
    if array.ndim == 1:
        return pd.DataFrame({"label": array})
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
