"""ROC AUC as the Mann-Whitney statistic: one sort (or one histogram) per class, ties counted as half.

AUC = P(score of a random positive > score of a random negative) + ½·P(equal), which is exactly the
area under the trapezoidal ROC curve scikit-learn computes. Pairs are counted in integers, so the
result is exact up to the final division. The score matrix is read once into one contiguous key row
per class (:mod:`podium.metrics.scorekeys`); each class then costs a histogram of its keys when they
are small integers, else a sort of its positives and one of its negatives (in float32, recounting
exactly the few pairs that float32 rounding tied).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from podium.metrics.scorekeys import ScoreKeys, score_keys

# Below this many scores a thread pool costs more than it saves.
_PARALLEL_MIN_ROWS = 200_000
# Recount rounding ties on a subset only while it is small (1/8 of the rows); else sort exactly.
_MAX_TIED_SHARE = 8


def binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUC of ``scores`` for the boolean ``positive`` mask; NaN when either side is empty."""
    keys = score_keys(np.asarray(scores, dtype=np.float64)[:, None])
    return _auc(keys, 0, np.asarray(positive, dtype=bool))


def ovr_macro_auc(proba: np.ndarray, codes: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the classes present in ``codes`` (column j scores class j).

    A class absent from the true labels has no AUC, so it is left out of the mean rather than failing
    (scikit-learn raises there); with fewer than two classes present the result is NaN.
    """
    present = np.flatnonzero(np.bincount(codes, minlength=proba.shape[1]))
    if present.size < 2:
        return float("nan")
    keys = score_keys(proba if present.size == proba.shape[1] else proba[:, present])

    def one(j: int) -> float:
        return _auc(keys, j, codes == present[j])

    workers = min(present.size, _cpus())
    # Histograms (np.bincount) hold the GIL, so counted classes gain nothing from threads.
    if workers < 2 or len(codes) < _PARALLEL_MIN_ROWS or keys.bins:
        return float(np.mean([one(j) for j in range(present.size)]))
    # Sorts and searches release the GIL, so sorted classes run in parallel on separate cores.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return float(np.mean(list(pool.map(one, range(present.size)))))


def _auc(keys: ScoreKeys, j: int, positive: np.ndarray) -> float:
    row = keys.rows[j]
    n_pos = int(np.count_nonzero(positive))
    n_neg = row.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    if keys.bins:
        twice_u = _twice_u_counted(row, keys.bins, positive, n_pos)
    elif keys.exact is None:
        twice_u = _twice_u_sorted(np.sort(row[positive]), np.sort(row[~positive]))[0]
    else:
        twice_u = _twice_u_rounded(row, keys.exact[:, j], positive)
    return twice_u / (2 * n_pos * n_neg)


def _twice_u_counted(row: np.ndarray, bins: int, positive: np.ndarray, n_pos: int) -> int:
    """2U from mid-ranks: a key's mid-rank is ``below + (count + 1) / 2``, read off a histogram.

    With ``upto`` = rows with a key at most k, twice the mid-rank is ``2·upto − count + 1``; summed
    over the positives, less ``n_pos·(n_pos + 1)`` (twice the smallest rank sum they could have),
    this is 2U.
    """
    count = np.bincount(row, minlength=bins)
    upto = np.cumsum(count)
    keys = row[positive]
    return 2 * int(upto[keys].sum()) - int(count[keys].sum()) - n_pos * n_pos


def _twice_u_sorted(pos: np.ndarray, neg: np.ndarray) -> tuple[int, np.ndarray]:
    """2U from sorted positives and negatives (each positive's negatives below ×2, tied ×1), and the
    positives that tie with a negative."""
    below = np.searchsorted(neg, pos, side="left")
    twice_u = 2 * int(below.sum())
    # Ties between a positive and negatives are rare for real scores; search again only for those.
    probe = np.minimum(below, neg.size - 1)
    tied = (neg[probe] == pos) & (below < neg.size)
    if not tied.any():
        return twice_u, pos[:0]
    twice_u += int((np.searchsorted(neg, pos[tied], side="right") - below[tied]).sum())
    return twice_u, pos[tied]


def _twice_u_rounded(row: np.ndarray, exact: np.ndarray, positive: np.ndarray) -> int:
    """2U of ``exact`` from its monotone rounding ``row``: only pairs that ``row`` ties can differ.

    Those pairs lie among the rows whose key some positive shares with some negative, so
    U(exact) = U(row) + U(exact on those rows) - U(row on those rows), the last two counted on a few rows.
    """
    twice_u, tied = _twice_u_sorted(np.sort(row[positive]), np.sort(row[~positive]))
    if tied.size == 0:
        return twice_u
    mixed = _has_key(row, tied) if tied.size * _MAX_TIED_SHARE <= row.size else None
    if mixed is None or np.count_nonzero(mixed) * _MAX_TIED_SHARE > row.size:
        # Ties everywhere (few distinct scores): sorting the exact scores is cheaper than recounting.
        return _twice_u_sorted(np.sort(exact[positive]), np.sort(exact[~positive]))[0]
    rows = np.flatnonzero(mixed)
    pos, keys, scores = positive[rows], row[rows], exact[rows]
    exactly = _twice_u_sorted(np.sort(scores[pos]), np.sort(scores[~pos]))[0]
    rounded = _twice_u_sorted(np.sort(keys[pos]), np.sort(keys[~pos]))[0]
    return twice_u + exactly - rounded


def _has_key(row: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Mask of the entries of float32 ``row`` whose bits hash like one of ``keys`` (a superset of
    the entries equal to one: extra rows do not change the recount, they only cost a little).

    With about as many slots as rows, about ``keys.size`` other rows share a slot by chance.
    """
    table = np.zeros(1 << min(max(row.size, keys.size, 1 << 10).bit_length(), 26), dtype=bool)
    table[_hash(keys.view(np.uint32), table.size)] = True
    return table[_hash(row.view(np.uint32), table.size)]


def _hash(bits: np.ndarray, size: int) -> np.ndarray:
    # Fibonacci hashing: the top bits of a product with 2**32/golden ratio (uint32 wraps around).
    return (bits * np.uint32(0x9E3779B1)) >> np.uint32(33 - size.bit_length())


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
