"""ROC AUC as the Mann-Whitney statistic: one sort per class, ties counted as half.

AUC = P(score of a random positive > score of a random negative) + ½·P(equal), which is exactly the
area under the trapezoidal ROC curve scikit-learn computes. Sorting positives and negatives apart and
binary-searching one in the other counts, for every positive, the negatives strictly below it and those
tied with it, in integers, so the result is exact up to the final division.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Below this many scores a thread pool costs more than it saves.
_PARALLEL_MIN_ROWS = 200_000


def binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUC of ``scores`` for the boolean ``positive`` mask; NaN when either side is empty."""
    return _mann_whitney(scores[positive], scores[~positive])


def ovr_macro_auc(proba: np.ndarray, codes: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the classes present in ``codes`` (column j scores class j).

    A class absent from the true labels has no AUC, so it is left out of the mean rather than failing
    (scikit-learn raises there); with fewer than two classes present the result is NaN.
    """
    present = np.flatnonzero(np.bincount(codes, minlength=proba.shape[1]))
    if present.size < 2:
        return float("nan")
    columns = np.asfortranarray(proba[:, present])  # contiguous columns: each is read many times

    def one(j: int) -> float:
        return binary_auc(columns[:, j], codes == present[j])

    workers = min(present.size, _cpus())
    if workers < 2 or len(codes) < _PARALLEL_MIN_ROWS:
        return float(np.mean([one(j) for j in range(present.size)]))
    # np.sort and np.searchsorted release the GIL, so classes sort in parallel on separate cores.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return float(np.mean(list(pool.map(one, range(present.size)))))


def _mann_whitney(pos: np.ndarray, neg: np.ndarray) -> float:
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    pos = np.sort(pos)
    neg = np.sort(neg)
    below = np.searchsorted(neg, pos, side="left")
    twice_u = 2 * int(below.sum())
    # Ties between a positive and negatives are rare for real scores; search again only for those.
    probe = np.minimum(below, neg.size - 1)
    tied = (neg[probe] == pos) & (below < neg.size)
    if tied.any():
        twice_u += int((np.searchsorted(neg, pos[tied], side="right") - below[tied]).sum())
    return twice_u / (2 * pos.size * neg.size)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
