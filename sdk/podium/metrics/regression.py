"""Regression metrics (MSE, RMSE, MAE, R², MAPE) in one blocked pass after the mean, matching scikit-learn.

Each metric is a sum over rows, so the arrays are walked once in cache-sized blocks and every sum is
taken while the block is still in cache; that, not the arithmetic, is what makes this faster than one
full pass per metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.errors import InvalidHoldout, InvalidPredictions, PodiumError

# Rows per block: small enough for the buffers to stay in cache, and no more than OpenBLAS's
# 10,000-element threshold for running a dot product multi-threaded, whose thread wake-ups cost more
# than they save on blocks this size.
_BLOCK = 10_000
_EPS = np.finfo(np.float64).eps  # MAPE's floor on |y_true|, as scikit-learn


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MSE, RMSE, MAE, R² and MAPE (as a fraction, not a percentage) of ``y_pred`` against ``y_true``."""
    true = _numbers(y_true, field="labels", error=InvalidHoldout)
    pred = _numbers(y_pred, field="predictions.labels", error=InvalidPredictions)
    if len(true) == 0:
        raise InvalidHoldout("the holdout has no rows", field="labels", hint="upload a non-empty holdout")
    if len(pred) != len(true):
        raise InvalidPredictions(
            f"has {len(pred)} rows but the holdout has {len(true)}", field="predictions.labels",
            hint="predict every holdout row, in the holdout's order",
        )
    n = len(true)
    mean = true.sum() / n
    if not np.isfinite(mean):
        _reject_non_finite(true, field="labels", error=InvalidHoldout)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, by name
        sse, sae, sst, sape = _sums(true, pred, mean)
    if not np.isfinite(sse):  # any NaN/inf prediction makes the squared error non-finite
        _reject_non_finite(pred, field="predictions.labels", error=InvalidPredictions)
    mse = sse / n
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": sae / n,
        "r2": _r2(sse, sst) if n > 1 else float("nan"),  # undefined on one row, as in scikit-learn
        "mape": sape / n,
    }


def _sums(true: np.ndarray, pred: np.ndarray, mean: float) -> tuple[float, float, float, float]:
    """Σ(ŷ-y)², Σ|ŷ-y|, Σ(y-ȳ)², Σ|ŷ-y|/max(|y|, ε), block by block.

    Plain sums are taken as dot products with ones (BLAS is faster than ``ndarray.sum`` here), and
    the ε floor is applied only to blocks that need it (a min is much cheaper than a maximum).
    """
    size = min(_BLOCK, len(true))
    diff, work, ones = np.empty(size), np.empty(size), np.ones(size)
    sse = sae = sst = sape = 0.0
    for start in range(0, len(true), size):
        t, p = true[start:start + size], pred[start:start + size]
        if len(t) < size:  # the last, short block
            diff, work, ones = diff[: len(t)], work[: len(t)], ones[: len(t)]
        np.subtract(p, t, out=diff)
        sse += float(diff @ diff)
        np.abs(diff, out=diff)
        sae += float(diff @ ones)
        np.subtract(t, mean, out=work)
        sst += float(work @ work)
        np.abs(t, out=work)
        if work.min() < _EPS:
            np.maximum(work, _EPS, out=work)
        np.divide(diff, work, out=work)
        sape += float(work @ ones)
    return sse, sae, sst, sape


def _r2(sse: float, sst: float) -> float:
    # Constant true values: scikit-learn's convention (perfect fit 1, anything else 0).
    if sst == 0:
        return 1.0 if sse == 0 else 0.0
    return 1.0 - sse / sst


def _numbers(values: Any, *, field: str, error: type[PodiumError]) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise error(f"expected one value per row, got shape {array.shape}", field=field,
                    hint="give a 1-D array of numbers")
    try:
        return np.ascontiguousarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise error(
            "contains non-numeric values, but this is a regression playground", field=field,
            hint="give numbers (class labels belong to a classification playground)",
        ) from None


def _reject_non_finite(array: np.ndarray, *, field: str, error: type[PodiumError]) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise error(f"contains NaN or infinite values (first rows {rows})", field=field,
                    hint="give a finite number for every row")
    raise error("values are too large to score (squared errors overflow float64)", field=field,
                hint="rescale the target")
