"""Classification metrics from one confusion matrix, matching scikit-learn's definitions.

Averaging follows scikit-learn's defaults with ``zero_division=0``: macro and weighted averages run
over the classes present in the true or predicted labels, so a playground class missing from a
(public or private) slice neither helps nor hurts; balanced accuracy averages recall over the classes
present in the true labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from podium.errors import InvalidHoldout, InvalidPredictions
from podium.metrics.auc import binary_auc, ovr_macro_auc
from podium.metrics.labels import class_list, encode
from podium.metrics.proba import align_proba

_EPS = np.finfo(np.float64).eps  # log-loss clipping, as scikit-learn


@dataclass(frozen=True)
class EncodedClassification:
    """Holdout and predictions as class codes; slice it to score a subset of rows without re-encoding."""

    true: np.ndarray
    pred: np.ndarray
    n_classes: int
    proba: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.true)

    def take(self, rows: np.ndarray) -> EncodedClassification:
        proba = None if self.proba is None else self.proba[rows]
        return EncodedClassification(self.true[rows], self.pred[rows], self.n_classes, proba)


def encode_classification(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any,
    proba: Any | None = None,
    proba_classes: Any | None = None,
) -> EncodedClassification:
    """Validate labels and predictions against the class list ``labels`` and encode them once."""
    classes = class_list(labels)
    true = encode(y_true, classes, field="labels", error=InvalidHoldout,
                  unknown_hint="add the missing classes to the playground's class labels, or fix the holdout")
    if len(true) == 0:
        raise InvalidHoldout("the holdout has no rows", field="labels", hint="upload a non-empty holdout")
    pred = encode(y_pred, classes, field="predictions.labels", error=InvalidPredictions)
    if len(pred) != len(true):
        raise InvalidPredictions(
            f"has {len(pred)} rows but the holdout has {len(true)}", field="predictions.labels",
            hint="predict every holdout row, in the holdout's order",
        )
    aligned = None if proba is None else align_proba(proba, proba_classes, classes, n_rows=len(true))
    return EncodedClassification(true, pred, len(classes), aligned)


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any,
    proba: Any | None = None,
    proba_classes: Any | None = None,
) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro/weighted precision, recall and F1; ROC AUC and log-loss with ``proba``.

    ``labels`` is the playground's class list; ``proba`` columns follow ``proba_classes``. Undefined
    values (e.g. AUC when the true labels hold one class) are NaN.
    """
    encoded = encode_classification(y_true, y_pred, labels=labels, proba=proba, proba_classes=proba_classes)
    return metrics_from_codes(encoded)


def metrics_from_codes(data: EncodedClassification) -> dict[str, float]:
    if len(data) == 0:
        raise InvalidHoldout("no rows to score", field="labels", hint="score a non-empty set of rows")
    k = data.n_classes
    confusion = np.bincount(data.true * k + data.pred, minlength=k * k).reshape(k, k)
    scores = _from_confusion(confusion)
    if data.proba is not None:
        scores["roc_auc"] = _roc_auc(data.proba, data.true)
        scores["log_loss"] = _log_loss(data.proba, data.true)
    return scores


def _from_confusion(confusion: np.ndarray) -> dict[str, float]:
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    seen = (support > 0) | (predicted > 0)
    tp, support, predicted = tp[seen], support[seen], predicted[seen]
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)  # = 2PR/(P+R), written so that 0/0 means 0
    weights = support / support.sum()
    return {
        "accuracy": float(tp.sum() / support.sum()),
        "balanced_accuracy": float(np.mean(recall[support > 0])),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "precision_weighted": float(precision @ weights),
        "recall_weighted": float(recall @ weights),
        "f1_weighted": float(f1 @ weights),
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _roc_auc(proba: np.ndarray, true: np.ndarray) -> float:
    if proba.shape[1] == 2:  # the second class is the positive one
        return binary_auc(proba[:, 1], true == 1)
    return ovr_macro_auc(proba, true)


def _log_loss(proba: np.ndarray, true: np.ndarray) -> float:
    # Each row's probability of its true class, as one flat take: much cheaper than 2-D fancy indexing.
    k = proba.shape[1]
    p = proba.reshape(-1).take(np.arange(0, len(true) * k, k) + true)
    np.clip(p, _EPS, 1 - _EPS, out=p)
    return float(-np.log(p).mean())
