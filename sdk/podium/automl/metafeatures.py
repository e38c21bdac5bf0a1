"""Dataset meta-features: the vector by which recommendations find similar playgrounds.

The groups of Rivolli et al.'s characterisation (as pymfe, Alcobaça et al. JMLR 2020, names them), each
summarised by mean and sd where it is per feature: general (classes and their balance), statistical
(skewness, kurtosis, absolute correlation, PCA spectrum, outliers), information-theoretic (attribute
entropy, mutual information with the target, equivalent number of attributes, noise-signal ratio) and
landmarkers (cross-validated 1-NN, decision stump, depth-4 tree, naive Bayes, LDA; R² of ridge, 1-NN and
trees for regression, with target statistics). They are computed on a subsample of at most
:data:`MAX_ROWS` rows and :data:`MAX_FEATURES` columns (the most variable ones), after standardising the
columns so that unit choices do not count as dissimilarity. Our own code rather than pymfe: pymfe 0.4.4
installs a top-level ``tests`` package into site-packages, which shadows any project's own ``tests``.

Every call returns the same sorted keys for a task, with finite values only (a measure that is
undefined on a data set, e.g. a correlation of a constant column, is 0.0), so vectors align.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np

from podium.automl.inputs import checked_table
from podium.automl.space import Task

MAX_ROWS = 500
MAX_FEATURES = 32
FOLDS = 3
BINS = 10  # equal-width bins of a feature (and quantile bins of a regression target) for entropies


def _check(x: Any, y: Any, task: str) -> tuple[np.ndarray, np.ndarray]:
    features, labels = checked_table(x, y, task, min_rows=2 * FOLDS)
    if task == "classification":
        labels = np.unique(labels, return_inverse=True)[1]  # codes 0..k-1: strings and floats alike
    return features, labels


def _subsample(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic: a seeded permutation's first MAX_ROWS rows, then the most variable columns."""
    if len(x) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(0).permutation(len(x))[:MAX_ROWS])
        x, y = x[rows], y[rows]
    spread = x.std(axis=0)
    keep = np.argsort(-spread, kind="stable")[:MAX_FEATURES]
    keep = np.sort(keep[spread[keep] > 0]) if (spread[keep] > 0).any() else keep[:1]
    x = x[:, keep]
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), y


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _binned(column: np.ndarray) -> np.ndarray:
    """Equal-width bins (the discretisation information-theoretic meta-features use)."""
    low, high = float(column.min()), float(column.max())
    if high <= low:
        return np.zeros(len(column), dtype=np.int64)
    return np.minimum(((column - low) / (high - low) * BINS).astype(np.int64), BINS - 1)


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    joint = np.zeros((int(a.max()) + 1, int(b.max()) + 1))
    np.add.at(joint, (a, b), 1)
    return _entropy(joint.sum(axis=1)) + _entropy(joint.sum(axis=0)) - _entropy(joint.ravel())


def _mean_sd(prefix: str, values: np.ndarray) -> dict[str, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return {f"{prefix}.mean": 0.0, f"{prefix}.sd": 0.0}
    return {f"{prefix}.mean": float(values.mean()), f"{prefix}.sd": float(values.std())}


def _statistical(x: np.ndarray) -> dict[str, float]:
    """Distribution shape, correlation and dimensionality of the (standardised) features."""
    from scipy import stats

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        skew, kurt = stats.skew(x, axis=0), stats.kurtosis(x, axis=0)
        corr = np.corrcoef(x, rowvar=False) if x.shape[1] > 1 else np.ones((1, 1))
    pairs = np.abs(corr[np.triu_indices(x.shape[1], k=1)]) if x.shape[1] > 1 else np.zeros(1)
    eigen = np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])), 0, None)[::-1]
    share = eigen / eigen.sum() if eigen.sum() > 0 else np.ones_like(eigen) / len(eigen)
    return {**_mean_sd("statistical.skewness", skew), **_mean_sd("statistical.kurtosis", kurt),
            **_mean_sd("statistical.abs_cor", pairs),
            "statistical.pca_first": float(share[0]),
            "statistical.pca_95_ratio": float((np.searchsorted(np.cumsum(share), 0.95) + 1) / len(share)),
            "statistical.outliers": float((np.abs(x) > 3).mean())}


def _information(x: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Attribute entropy, mutual information with the (binned) target, and what they imply."""
    binned = [_binned(x[:, j]) for j in range(x.shape[1])]
    entropy = np.array([_entropy(np.bincount(column)) for column in binned]) / math.log2(BINS)
    information = np.array([_mutual_information(column, target) for column in binned])
    target_entropy = _entropy(np.bincount(target))
    mean_mi = float(information.mean())
    return {**_mean_sd("info.attr_entropy", entropy), **_mean_sd("info.mutual_information", information),
            "info.target_entropy": target_entropy,
            "info.equivalent_attributes": min(target_entropy / mean_mi, 1000.0) if mean_mi > 0 else 1000.0,
            "info.noise_signal": min((float(entropy.mean()) * math.log2(BINS) - mean_mi) / mean_mi, 1000.0)
            if mean_mi > 0 else 1000.0}


def _cv_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = max(2, min(FOLDS, int(np.bincount(y).min())))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(cross_val_score(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0))))


def _classification(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    counts = np.bincount(y)
    values = {"general.n_classes": float(len(counts)), "general.class_ratio": float(counts.min() / counts.max()),
              "general.class_entropy": _entropy(counts) / math.log2(len(counts)) if len(counts) > 1 else 0.0,
              **_statistical(x), **_information(x, y)}
    if counts.min() >= 2:  # each landmarker needs two rows of every class for a fold
        values.update({
            "landmark.one_nn": _cv_accuracy(KNeighborsClassifier(n_neighbors=1), x, y),
            "landmark.stump": _cv_accuracy(DecisionTreeClassifier(max_depth=1, random_state=0), x, y),
            "landmark.tree": _cv_accuracy(DecisionTreeClassifier(max_depth=4, random_state=0), x, y),
            "landmark.naive_bayes": _cv_accuracy(GaussianNB(), x, y),
            "landmark.lda": _cv_accuracy(LinearDiscriminantAnalysis(), x, y),
        })
    return values


def _cv_r2(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.model_selection import KFold, cross_val_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = float(np.mean(cross_val_score(model, x, y, cv=KFold(FOLDS, shuffle=True, random_state=0),
                                              scoring="r2")))
    return max(-1.0, min(1.0, score))  # a landmarker far below zero says only "useless"


def _regression(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Target statistics and regression landmarkers (what the classification groups measure)."""
    from scipy import stats
    from sklearn.linear_model import Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.tree import DecisionTreeRegressor

    centred = (y - y.mean()) / (y.std() or 1.0)
    with np.errstate(all="ignore"):
        correlation = np.abs([np.corrcoef(x[:, j], centred)[0, 1] for j in range(x.shape[1])])
    return {
        "target.skewness": float(stats.skew(centred)), "target.kurtosis": float(stats.kurtosis(centred)),
        "target.distinct_ratio": len(np.unique(y)) / len(y),
        "target.abs_cor.mean": float(np.nanmean(correlation)) if np.isfinite(correlation).any() else 0.0,
        "target.abs_cor.max": float(np.nanmax(correlation)) if np.isfinite(correlation).any() else 0.0,
        "landmark.linear_r2": _cv_r2(Ridge(alpha=1.0), x, centred),
        "landmark.one_nn_r2": _cv_r2(KNeighborsRegressor(n_neighbors=1), x, centred),
        "landmark.stump_r2": _cv_r2(DecisionTreeRegressor(max_depth=1, random_state=0), x, centred),
        "landmark.tree_r2": _cv_r2(DecisionTreeRegressor(max_depth=4, random_state=0), x, centred),
    }


def _raw(x: np.ndarray, y: np.ndarray, task: Task, rows: int, columns: int) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    # one BLAS/OpenMP thread: on a subsample this small, thread pools cost more than they give
    # (digits: 0.7 s with one thread, 3.2 s with the default pools on a busy 2-core machine)
    with threadpool_limits(1):
        return _measure(x, y, task, rows, columns)


def _measure(x: np.ndarray, y: np.ndarray, task: Task, rows: int, columns: int) -> dict[str, float]:
    values = {"podium.log_rows": math.log10(rows), "podium.log_features": math.log10(columns),
              "podium.log_rows_per_feature": math.log10(rows / columns)}
    if task == "classification":
        values.update(_classification(x, y))
    else:
        quantiles = np.quantile(y, np.linspace(0, 1, BINS + 1)[1:-1])
        values.update({**_statistical(x), **_information(x, np.searchsorted(quantiles, y, side="right")),
                       **_regression(x, y)})
    return values


@functools.cache
def keys(task: Task) -> tuple[str, ...]:
    """The sorted meta-feature names of ``task`` (measured once on a small fixed data set)."""
    from sklearn.datasets import make_classification, make_regression

    if task == "classification":
        x, y = make_classification(n_samples=90, n_features=5, n_informative=3, n_classes=3, random_state=0)
    else:
        x, y = make_regression(n_samples=90, n_features=5, random_state=0)
    sample_x, sample_y = _subsample(x.astype(np.float64), y)
    return tuple(sorted(_raw(sample_x, sample_y, task, len(x), x.shape[1])))


def compute(X: Any, y: Any, task: Task) -> dict[str, float]:  # noqa: N803 (scikit-learn's name)
    """Meta-features of a data set: the keys of :func:`keys` in order, each a finite float."""
    features, labels = _check(X, y, task)
    sample_x, sample_y = _subsample(features, labels)
    raw = _raw(sample_x, sample_y, task, features.shape[0], features.shape[1])
    out = {}
    for key in keys(task):
        value = raw.get(key, 0.0)
        out[key] = float(value) if math.isfinite(value) else 0.0
    return out
