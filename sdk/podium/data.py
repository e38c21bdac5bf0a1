"""Read and write holdout tables: CSV, Parquet (with pyarrow), NumPy ``.npy`` and ``.npz``.

The format is chosen by file suffix. CSV and Parquet files have a header row; a labels file is its only
column, or the column named ``label``/``labels``/``target``/``y`` (other columns, e.g. an id column, may
sit beside it). ``.npz`` archives hold one array, or name it ``features``/``X`` (features) or
``labels``/``y`` (labels). Nothing is ever unpickled.

Labels are read for the playground's task (``read_labels(path, task=...)``):

- classification: as text, exactly as written. In a CSV nothing is guessed: ``NA``, ``None`` or ``null``
  are class names like any other, ``01`` stays ``01``, and only an empty cell is a missing label. Numbers
  from ``.npy``/``.npz``/Parquet become the text they denote (``1``, ``1.0`` → ``"1"``; ``0.5`` → ``"0.5"``;
  ``True`` → ``"True"``); a missing value becomes ``""``, which the holdout check reports.
- regression: as float64. Text that is not a number (``"cat"``) is refused; an empty cell, ``NA`` or
  ``NaN`` is read as NaN, which the holdout check reports.

Without a task, labels are read as pandas infers them (the behaviour before tasks were passed).
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
_MISSING_TEXT = ("", "nan", "na", "n/a", "null", "none")  # a regression target's missing values, as text


def read_features(path: str | Path) -> pd.DataFrame | np.ndarray:
    """Holdout features: a DataFrame for CSV/Parquet, an array for ``.npy``/``.npz``."""
    path = _existing(path, field="features")
    suffix = _suffix(path, field="features")
    if suffix in (".npy", ".npz"):
        return _read_array(path, keys=FEATURE_KEYS, field="features")
    return _read_frame(path, field="features")


def read_labels(path: str | Path, *, task: str | None = None) -> np.ndarray:
    """Holdout labels as a 1-D array: text for ``task="classification"``, float64 for ``"regression"``,
    as pandas infers them without a task (see the module docstring)."""
    path = _existing(path, field="labels")
    suffix = _suffix(path, field="labels")
    if suffix in (".npy", ".npz"):
        labels = _read_array(path, keys=("labels", "y"), field="labels")
    else:
        # With a task, a blank line is a row without a label (reported as such), not nothing.
        frame = _read_frame(path, field="labels", text=task == "classification", blanks=task is not None)
        labels = _label_column(frame, path)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise InvalidHoldout(f"{path.name} holds an array of shape {labels.shape}, not one label per row",
                             field="labels", hint="store a 1-D array of labels")
    if task == "classification":
        return label_text(labels)
    if task == "regression":
        return _label_numbers(labels, path)
    return labels


def label_header(path: str | Path) -> str | None:
    """The header of the label column of a CSV labels file (None for other formats): a header that is
    itself a label (a class, a number) means the file has no header row and its first label was lost."""
    path = _existing(path, field="labels")
    if _suffix(path, field="labels") != ".csv":
        return None
    columns = [str(name) for name in _read_frame(path, field="labels", text=True, rows=0).columns]
    if len(columns) == 1:
        return columns[0]
    return next((name for name in LABEL_COLUMNS if name in columns), None)


def read_column(path: str | Path, name: str, *, field: str) -> np.ndarray | None:
    """Column ``name`` of a CSV/Parquet table (CSV cells as text, exactly as written); None when the
    table has no such column or the file is an array."""
    path = _existing(path, field=field)
    if _suffix(path, field=field) in (".npy", ".npz"):
        return None
    frame = _read_frame(path, field=field, text=True)
    return frame[name].to_numpy() if name in frame.columns else None


def label_text(values: np.ndarray) -> np.ndarray:
    """Class labels as text: numbers as the text they denote (integral floats without ``.0``), a
    missing value (None, NaN) as ``""``."""
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind == "U":
        return values
    if kind == "S":
        return values.astype(str)
    if kind in "biu":
        return values.astype(str)
    if kind == "f":
        text = values.astype(str).astype(object)
        with np.errstate(invalid="ignore"):
            integral = np.isfinite(values) & (np.trunc(values) == values) & (np.abs(values) < 2.0**63)
        text[integral] = values[integral].astype(np.int64).astype(str)
        text[np.isnan(values)] = ""
        return text.astype(str)
    missing = pd.isna(values)
    if not missing.any() and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values.astype(str)
    return np.array(["" if gone else _one_label_text(value) for value, gone in zip(values, missing, strict=True)],
                    dtype=str)


def _one_label_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _label_numbers(values: np.ndarray, path: Path) -> np.ndarray:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    series = pd.Series(values, dtype=object)
    numbers = pd.to_numeric(series, errors="coerce")
    missing = series.isna() | series.astype(str).str.strip().str.lower().isin(_MISSING_TEXT)
    bad = np.flatnonzero((numbers.isna() & ~missing).to_numpy())
    if bad.size:
        raise InvalidHoldout(
            f"{path.name} holds text labels such as {str(values[bad[0]])!r} (row {int(bad[0])}), but a regression "
            "playground needs numbers", field="labels",
            hint="store numeric targets, or make it a classification playground listing the classes in classLabels",
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def table_suffix(data: Any) -> str:
    """The file type to store ``data`` as: ``.npy`` for N-d arrays (images: one (8, 8) array per row), which
    no table holds, else ``.csv``."""
    return ".csv" if isinstance(data, pd.DataFrame | pd.Series) or np.ndim(data) <= 2 else ".npy"


def write_table(data: pd.DataFrame | np.ndarray | pd.Series, path: str | Path) -> Path:
    """Write ``data`` in the format named by ``path``'s suffix; 1-D data becomes a ``label`` column.

    N-d arrays (images) go to ``.npy``/``.npz`` only (:func:`table_suffix` picks the suffix).
    """
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


def _read_frame(
    path: Path, *, field: str, text: bool = False, rows: int | None = None, blanks: bool = False
) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            if text:  # every cell as written: no NA guessing, no numbers
                return pd.read_csv(path, dtype=str, keep_default_na=False, nrows=rows, skip_blank_lines=not blanks)
            return pd.read_csv(path, nrows=rows, skip_blank_lines=not blanks)
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
    if array.ndim != 2:
        raise InvalidHoldout(f"an array of shape {array.shape} has {array.ndim} dimensions; a table holds 2",
                             field="path", hint="store image or other N-d features as .npy or .npz")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
