"""Order-preserving keys for score columns: what one-vs-rest AUC sorts (or counts) per class.

AUC depends on the scores only through their order and their ties, so a key that orders and ties
exactly like the scores gives the same result. The score matrix is read once, in row blocks that fit
in cache, into one contiguous key row per column, choosing the cheapest key:

- scores on a decimal grid (probabilities written with a few decimals, as CSV files hold them) become
  the integers ``rint(score * 10**d)``, checked value by value to map back to the very same float; when
  their range is small they are counted with a histogram instead of sorted;
- anything else becomes float32, which sorts much faster than float64. Rounding is monotone, so it
  keeps the order but may tie distinct scores; unless every score survived it (float32 models' output),
  the keys keep a reference to the exact scores, and AUC recounts the few pairs that rounding tied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rows per block: ~1 MB of float64 for 10 columns, so a block is still in cache for its second pass.
_BLOCK_ROWS = 12_288
_SCALES = 10.0 ** np.arange(10)  # decimal grids tried: 0 to 9 decimals
_SAMPLE_ROWS = 64
# Counting beats sorting while the histogram is not much larger than the column.
_BINS_PER_ROW = 4
_MIN_BINS = 1 << 16
_MAX_KEY = float(1 << 52)  # keys stay integers that float64 and intp hold exactly


@dataclass(frozen=True)
class ScoreKeys:
    """Row ``j`` of ``rows`` orders like column ``j`` of the scores.

    ``bins > 0``: the rows hold integers in ``[0, bins)`` that also tie exactly like the scores (count
    them). Otherwise they hold floats; ``exact`` is None when they tie exactly like the scores, else
    it is the scores themselves, for the pairs that rounding tied.
    """

    rows: np.ndarray
    bins: int = 0
    exact: np.ndarray | None = None


def score_keys(scores: np.ndarray) -> ScoreKeys:
    """Keys for every column of the ``(n, m)`` float64 array ``scores`` (any memory layout)."""
    scale = _decimal_scale(scores)
    if scale is not None:
        counted = _grid_keys(scores, scale)
        if counted is not None:
            return counted
    rows, lossless = _float32_rows(scores)
    return ScoreKeys(rows, exact=None if lossless else scores)


def _sample(scores: np.ndarray) -> np.ndarray:
    step = max(1, len(scores) // _SAMPLE_ROWS)
    return np.asarray(scores[::step][:_SAMPLE_ROWS], dtype=np.float64).ravel()


def _decimal_scale(scores: np.ndarray) -> float | None:
    """The smallest ``10**d`` whose grid holds every sampled score, if any (the full check comes later)."""
    sample = _sample(scores)
    if sample.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = sample[None, :] * _SCALES[:, None]
        on_grid = (np.rint(scaled) / _SCALES[:, None] == sample[None, :]).all(axis=1)
    hits = np.flatnonzero(on_grid)
    return float(_SCALES[hits[0]]) if hits.size else None


def _grid_keys(scores: np.ndarray, scale: float) -> ScoreKeys | None:
    """``rint(score * scale)`` per column, or None if a score is off the grid or the range is too wide.

    Exact: every score is checked to equal ``key / scale`` (rounded as floats round), so equal keys
    mean equal scores, and since rounding is monotone a smaller key means a smaller score.
    """
    n, m = scores.shape
    limit = max(_BINS_PER_ROW * n, _MIN_BINS)
    rows = np.empty((m, n), dtype=np.intp)
    size = min(_BLOCK_ROWS, n)
    keys, back = np.empty((size, m)), np.empty((size, m))
    low, high = np.inf, -np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, size):
            block = scores[start:start + size]
            k, b = keys[: len(block)], back[: len(block)]
            np.multiply(block, scale, out=k)
            np.rint(k, out=k)
            np.divide(k, scale, out=b)
            if not np.array_equal(b, block):  # off the grid (or NaN)
                return None
            low, high = min(low, float(k.min())), max(high, float(k.max()))
            if not (high - low < limit and low > -_MAX_KEY and high < _MAX_KEY):  # also catches infinities
                return None
            rows[:, start:start + len(block)] = k.T
    if low < 0 or high + 1 > limit:  # shift into [0, bins) only when the keys do not already fit
        rows -= int(low)
        return ScoreKeys(rows, int(high - low) + 1)
    return ScoreKeys(rows, int(high) + 1)


def _float32_rows(scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """``scores.T`` rounded to contiguous float32 rows, block by block, and whether no value changed.

    -0.0 becomes 0.0: equal keys must have equal bits, since tied keys are looked up by their bits.
    """
    n, m = scores.shape
    rows = np.empty((m, n), dtype=np.float32)
    lossless = True
    with np.errstate(over="ignore", under="ignore"):  # out of float32's range: still monotone
        for start in range(0, n, _BLOCK_ROWS):
            block = scores[start:start + _BLOCK_ROWS].T
            target = rows[:, start:start + _BLOCK_ROWS]
            target[...] = block
            np.add(target, 0.0, out=target)
            lossless = lossless and np.array_equal(target, block)
    return rows, lossless
