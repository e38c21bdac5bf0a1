"""Match class labels by value against a playground's class list.

Labels arrive from many places (CSV columns, model outputs, a CLI list) and may be strings on one side
and integers on the other; ``"1"`` and ``1`` and ``1.0`` name the same class. A value matches a class
exactly first (as text when either side is text); a value that matches none but denotes a number is
matched to the one class that denotes the same number (predicted ``"1.0"`` or ``1.0`` is class ``"1"``,
``2`` is class ``"02"``), and left unknown when no class or several do (classes ``"1"`` and ``"01"``).
Everything is turned into integer codes, the position of each value in the playground's class list,
once; metrics then work on the codes only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from podium.errors import InvalidConfig, PodiumError

_NUMERIC = "biuf"
_LABEL_KINDS = "biufUO"  # after as_values; an object array is refused below, as missing values
_SHOWN = 5  # how many offending values an error message quotes
_TABLE_MAX = 1 << 16  # integer classes spanning at most this many values are looked up in a table


def as_values(values: Any) -> np.ndarray:
    """A 1-D array with a plain dtype: strings as unicode, numbers as numbers.

    Object arrays (pandas columns) are narrowed by content; one holding missing values stays ``object``
    so that :func:`encode` can reject it by name.
    """
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.dtype.kind == "S":
        return array.astype(str)
    if array.dtype.kind != "O":
        return array
    kind = pd.api.types.infer_dtype(array, skipna=False)
    if kind == "integer":
        return array.astype(np.int64)
    if kind in ("floating", "mixed-integer-float", "empty"):
        return array.astype(np.float64)
    if kind == "boolean":
        return array.astype(bool)
    if kind in ("string", "mixed-integer"):
        return array.astype(str)
    return array


def class_list(classes: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Validate a playground's class labels: at least two, no duplicates, no missing values."""
    array = as_values(classes)
    if array.ndim != 1 or array.size < 2:
        raise InvalidConfig(
            f"a classification playground needs at least 2 class labels, got {array.size}",
            field="class_labels",
            hint="list every class the holdout labels can take, e.g. --class-labels '[\"cat\", \"dog\"]'",
        )
    if array.dtype.kind == "O" or (array.dtype.kind == "f" and not np.isfinite(array).all()):
        raise InvalidConfig("class labels contain missing values", field="class_labels",
                            hint="remove empty/NaN entries from the class label list")
    if np.unique(array).size != array.size:
        raise InvalidConfig("class labels contain duplicates", field="class_labels",
                            hint="list each class once")
    return array


def _as_strings(array: np.ndarray) -> np.ndarray:
    """Numbers as the strings a person would write: integral floats lose their '.0'."""
    if array.dtype.kind == "f" and np.isfinite(array).all() and (np.mod(array, 1) == 0).all():
        return array.astype(np.int64).astype(str)
    return array.astype(str)


def encode(
    values: Any,
    classes: np.ndarray,
    *,
    field: str,
    error: type[PodiumError],
    unknown_hint: str = "predict only the playground's class labels (is the label encoding the training data's?)",
) -> np.ndarray:
    """Codes (positions in ``classes``) of ``values``; unknown, missing or non-label values raise ``error``.

    ``classes`` must come from :func:`class_list`.
    """
    try:
        array = as_values(values)
    except UnicodeDecodeError:
        raise error("holds bytes that are not ASCII text", field=field, hint="give labels as str, not bytes") from None
    if array.ndim != 1:
        raise error(f"expected a 1-D array of labels, got shape {array.shape}", field=field,
                    hint="give one label per row")
    if array.dtype.kind not in _LABEL_KINDS:  # complex, datetime, structured, void: no class label
        raise error(f"has dtype {array.dtype}, but class labels are booleans, integers, real numbers or text",
                    field=field, hint="give one class label per row, as a number or a string")
    if array.dtype.kind == "O":
        raise error("contains missing values", field=field, hint="give a label for every row")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            rows = np.flatnonzero(bad)[:_SHOWN].tolist()
            raise error(f"contains NaN or infinite values (first rows {rows})", field=field,
                        hint="give a finite class label for every row")
        if classes.dtype.kind != "f" and not (np.mod(array, 1) == 0).all():
            raise error(
                f"contains non-integer numbers such as {array[np.mod(array, 1) != 0][0].item()!r}, which look like "
                f"regression values or scores, but this is a classification playground with classes "
                f"{_quote(classes)}",
                field=field,
                hint="submit predicted class labels (model.predict), and class probabilities separately",
            )
    comparable, keys = _comparable(array, classes)
    table_codes = _by_table(comparable, keys)
    if table_codes is not None:  # every value is one of a few integer classes: no search needed
        return table_codes
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    slot = np.searchsorted(sorted_keys, comparable)
    np.minimum(slot, len(sorted_keys) - 1, out=slot)
    known = sorted_keys[slot] == comparable
    codes = order[slot]
    if not known.all():
        codes[~known] = _by_number(array[~known], classes)
        known = codes >= 0
    if not known.all():
        unknown = np.unique(array[~known])[:_SHOWN]
        raise error(
            f"contains labels {_quote(unknown)} that are not among the playground's classes {_quote(classes)}",
            field=field,
            hint=unknown_hint,
        )
    return codes


def _by_table(values: np.ndarray, classes: np.ndarray) -> np.ndarray | None:
    """Codes of integer ``values`` by one table lookup each (integer classes spanning a small range),
    or None unless every value is such a class: the rest takes the general path and its messages."""
    if values.dtype.kind not in "iu" or classes.dtype.kind not in "iu" or values.size == 0:
        return None
    low, high = int(classes.min()), int(classes.max())
    if high - low >= _TABLE_MAX or abs(low) >= 1 << 62 or int(values.min()) < low or int(values.max()) > high:
        return None
    table = np.full(high - low + 1, -1, dtype=np.intp)
    table[classes.astype(np.intp) - low] = np.arange(classes.size)
    index = values.astype(np.intp, copy=False)
    codes = table.take(index - low if low else index)
    return codes if codes.min() >= 0 else None


def _by_number(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Code of the one class denoting the same number as each value; -1 where none or several do."""
    uniques, inverse = np.unique(values, return_inverse=True)  # only values without an exact match
    wanted, offered = _numbers(uniques), _numbers(classes)
    candidates = np.flatnonzero(np.isfinite(offered))
    ranked = candidates[np.argsort(offered[candidates], kind="stable")]
    numbers = offered[ranked]
    first = np.searchsorted(numbers, wanted, side="left")
    matches = np.searchsorted(numbers, wanted, side="right") - first
    found = np.isfinite(wanted) & (matches == 1)
    codes = np.full(len(uniques), -1, dtype=np.intp)
    codes[found] = ranked[first[found]]
    return codes[inverse]


def _numbers(array: np.ndarray) -> np.ndarray:
    """Each value as the number it denotes (NaN for text that is not a number)."""
    if array.dtype.kind in _NUMERIC:
        return array.astype(np.float64)
    return pd.to_numeric(pd.Series(array.astype(str), dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)


def _comparable(array: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bring values and classes to one kind: numbers compare by value, otherwise both become strings."""
    numeric_values = array.dtype.kind in _NUMERIC
    numeric_classes = classes.dtype.kind in _NUMERIC
    if numeric_values and numeric_classes:
        return array, classes
    if numeric_values:
        return _as_strings(array), classes
    if numeric_classes:
        return array, _as_strings(classes)
    return array, classes


def _quote(values: np.ndarray) -> str:
    shown = [v.item() if hasattr(v, "item") else v for v in values[:_SHOWN]]
    return str(shown) + (" ..." if len(values) > _SHOWN else "")
