"""Turn raw model output into :class:`Predictions`: one rule set for every framework.

Classifiers that emit scores get probabilities whose columns follow the class labels: scores
that are not already a distribution (negative, or rows not summing to 1) are logits and go
through softmax; a single score column is a binary sigmoid output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from podium.frameworks.base import ModelOutput
from podium.frameworks.errors import ModelOutputError
from podium.predictions import Predictions

_SUM_TOLERANCE = 1e-3
_FEW_CLASSES = 32  # up to this many score columns, softmax runs column-wise


def to_predictions(
    output: ModelOutput,
    *,
    rows: int,
    class_labels: Sequence[Any] | None = None,
    task: str | None = None,
) -> Predictions:
    labels = None if output.labels is None else _column(output.labels, "labels", rows)
    scores = None if output.scores is None else _scores(output.scores, rows)
    if labels is None and scores is None:
        raise ModelOutputError(
            "the model returned no output", field="model", hint="return an array from predict/forward"
        )
    classes = output.classes if output.classes is not None else _classes(class_labels)
    if task == "regression" or (
        task is None and classes is None and (scores is None or scores.shape[1] == 1)
    ):
        return Predictions(labels=labels if labels is not None else _single_column(scores))
    if scores is None:
        assert labels is not None  # one of the two was checked above
        return Predictions(labels=labels)
    proba = _probabilities(scores)
    if classes is None:
        classes = np.arange(proba.shape[1])
    if len(classes) != proba.shape[1]:
        raise ModelOutputError(
            f"the model outputs {scores.shape[1]} score column(s) per row but there are {len(classes)} class labels",
            field="class_labels",
            hint="pass class_labels in the order of the model's output units when saving the submission",
        )
    if labels is None:
        labels = np.asarray(classes)[proba.argmax(axis=1)]
    return Predictions(labels=labels, proba=proba, classes=np.asarray(classes))


def _classes(class_labels: Sequence[Any] | None) -> np.ndarray | None:
    return None if class_labels is None else np.asarray(list(class_labels))


def _column(values: np.ndarray, name: str, rows: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    _check_rows(values, rows)
    if values.ndim != 1:
        raise ModelOutputError(
            f"the model returned {name} of shape {values.shape}; expected one value per row",
            field="model",
            hint="return a 1-D array of labels or an (n, classes) array of scores",
        )
    return values


def _scores(values: np.ndarray, rows: int) -> np.ndarray:
    """Scores keep a float32 network's dtype: they are converted once, where they are computed on
    (softmax) or written, not copied per batch."""
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    _check_rows(values, rows)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ModelOutputError(
            f"the model returned scores of shape {values.shape}; expected (rows, classes)",
            field="model",
            hint="flatten the model's output to one row of scores per input row",
        )
    return values


def _check_rows(values: np.ndarray, rows: int) -> None:
    if values.ndim == 0 or len(values) != rows:
        got = "a scalar" if values.ndim == 0 else f"{len(values)} rows"
        raise ModelOutputError(
            f"the model returned {got} for {rows} input rows",
            field="model",
            hint="predict must return exactly one prediction per input row, in input order (no filtering or batching)",
        )


def _single_column(scores: np.ndarray | None) -> np.ndarray:
    assert scores is not None
    if scores.shape[1] != 1:
        raise ModelOutputError(
            f"a regression model must return one value per row, got {scores.shape[1]} columns",
            field="model",
            hint="multi-output regression is not supported; submit one model per target or set task='classification'",
        )
    return scores[:, 0].astype(np.float64)


def _probabilities(scores: np.ndarray) -> np.ndarray:
    if scores.shape[1] == 1:  # binary classifier with one sigmoid (or logit) unit
        positive = scores[:, 0].astype(np.float64)
        if positive.min(initial=0.0) < 0 or positive.max(initial=0.0) > 1:
            positive = 1.0 / (1.0 + np.exp(-positive))
        return np.column_stack([1.0 - positive, positive])
    # row sums as a matrix-vector product: NumPy reduces along a short last axis one row at a time
    sums = scores @ np.ones(scores.shape[1], dtype=scores.dtype)
    if scores.min() >= 0 and np.abs(sums - 1.0).max(initial=0.0) <= _SUM_TOLERANCE:
        return scores
    return _softmax(scores)


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax; with few classes it works on a (classes, rows) copy, where every step is a
    vector operation across all rows instead of a tiny reduction per row (5-10x faster for 3 classes)."""
    if scores.shape[1] > _FEW_CLASSES:
        scores = scores.astype(np.float64)
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    columns = np.array(scores.T, dtype=np.float64, order="C")  # float64: logits of float32 nets too
    columns -= columns.max(axis=0)
    np.exp(columns, out=columns)
    columns /= columns.sum(axis=0)
    return np.ascontiguousarray(columns.T)
