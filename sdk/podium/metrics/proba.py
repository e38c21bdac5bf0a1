"""Validate class probabilities and line their columns up with the playground's class list."""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.errors import InvalidPredictions
from podium.metrics.labels import encode

# Rows must sum to 1 within this: loose enough for float32 softmax over many classes, tight enough to
# reject scores or logits passed off as probabilities.
SUM_TOLERANCE = 1e-4
_FIELD = "predictions.proba"


def align_proba(proba: Any, proba_classes: Any, classes: np.ndarray, *, n_rows: int) -> np.ndarray:
    """``proba`` as C-contiguous float64 (n_rows, k), column j holding the probability of ``classes[j]``."""
    proba = np.ascontiguousarray(proba, dtype=np.float64)  # rows are read whole by every metric
    k = len(classes)
    if proba.ndim != 2 or proba.shape[0] != n_rows:
        raise InvalidPredictions(
            f"has shape {proba.shape}, expected ({n_rows}, {k}) = (rows, classes)", field=_FIELD,
            hint="give one row of class probabilities per holdout row (model.predict_proba)",
        )
    if proba_classes is None:
        raise InvalidPredictions("probabilities come without their class order", field="predictions.classes",
                                 hint="pass the model's classes_ alongside predict_proba")
    columns = encode(proba_classes, classes, field="predictions.classes", error=InvalidPredictions,
                     unknown_hint="give one probability column per playground class, named by its label")
    if proba.shape[1] != k or len(columns) != k or np.unique(columns).size != k:
        raise InvalidPredictions(
            f"probability columns are for classes {np.asarray(proba_classes).tolist()[:10]}, "
            f"but the playground's classes are {classes.tolist()[:10]}",
            field="predictions.classes",
            hint="give exactly one probability column per playground class, each class once",
        )
    _check_rows(proba)
    if np.array_equal(columns, np.arange(k)):
        return proba
    aligned = np.empty_like(proba)
    aligned[:, columns] = proba
    return aligned


def _check_rows(proba: np.ndarray) -> None:
    # A row sum is non-finite exactly when the row holds a NaN or an infinity, so one reduction checks both.
    # A product with ones is a BLAS call, several times faster than sum(axis=1) over short rows.
    sums = proba @ np.ones(proba.shape[1])
    finite = np.isfinite(sums)
    if not finite.all():
        rows = np.flatnonzero(~finite)[:5].tolist()
        raise InvalidPredictions(f"contains NaN or infinite values (first rows {rows})", field=_FIELD,
                                 hint="make the model output finite probabilities for every row")
    if proba.size and proba.min() < 0:
        rows = np.flatnonzero((proba < 0).any(axis=1))[:5].tolist()
        raise InvalidPredictions(f"contains negative values (first rows {rows})", field=_FIELD,
                                 hint="submit probabilities (e.g. softmax output), not scores or logits")
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise InvalidPredictions(
            f"{int(off.sum())} rows do not sum to 1 (row {row} sums to {sums[row]:.6g}; tolerance {SUM_TOLERANCE})",
            field=_FIELD,
            hint="normalise each row to sum to 1 (e.g. softmax), or submit labels only",
        )
