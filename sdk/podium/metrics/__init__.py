"""Built-in leaderboard metrics: fast NumPy implementations checked against scikit-learn."""

from __future__ import annotations

from typing import Any

from podium.errors import InvalidConfig
from podium.metrics.classification import (
    EncodedClassification,
    classification_metrics,
    encode_classification,
    metrics_from_codes,
)
from podium.metrics.registry import METRICS, MetricInfo, Task, metric_names
from podium.metrics.regression import regression_metrics

__all__ = [
    "METRICS",
    "EncodedClassification",
    "MetricInfo",
    "Task",
    "classification_metrics",
    "compute_metrics",
    "encode_classification",
    "metric_names",
    "metrics_from_codes",
    "regression_metrics",
]


def compute_metrics(
    task: Task,
    y_true: Any,
    y_pred: Any,
    *,
    labels: Any | None = None,
    proba: Any | None = None,
    proba_classes: Any | None = None,
) -> dict[str, float]:
    """All built-in metrics of ``task``; ``labels`` (the class list) is required for classification."""
    if task == "classification":
        if labels is None:
            raise InvalidConfig("classification needs the playground's class labels", field="class_labels",
                                hint="pass labels=[...] with every class the holdout can take")
        return classification_metrics(y_true, y_pred, labels=labels, proba=proba, proba_classes=proba_classes)
    if task == "regression":
        if proba is not None:
            raise InvalidConfig("probabilities were given to a regression playground", field="predictions.proba",
                                hint="submit predicted values only")
        return regression_metrics(y_true, y_pred)
    raise InvalidConfig(f"unknown task {task!r}", field="task", hint="use 'classification' or 'regression'")
