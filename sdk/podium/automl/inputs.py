"""The one check of a training table (features and labels) that searches and meta-features read."""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.automl.space import TASKS
from podium.errors import InvalidConfig


def checked_table(x: Any, y: Any, task: str, *, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite float features ``[rows, columns]`` and one label per row (regression: finite floats), or an
    InvalidConfig naming ``X``, ``y`` or ``task``."""
    if task not in TASKS:
        raise InvalidConfig(f"unknown task {task!r}", field="task", hint="use classification or regression")
    try:
        features = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidConfig("features are not numeric", field="X", hint="encode categorical columns first") from None
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise InvalidConfig(f"features have shape {features.shape}, need rows x columns", field="X",
                            hint="give a non-empty 2-D table")
    if features.shape[0] < min_rows:
        raise InvalidConfig(f"{features.shape[0]} rows, fewer than the {min_rows} needed", field="X",
                            hint=f"give at least {min_rows} rows (or fewer cross-validation folds)")
    if not np.isfinite(features).all():
        raise InvalidConfig("features hold NaN or infinite values", field="X", hint="impute missing values first")
    labels = np.asarray(y)
    if labels.shape != (features.shape[0],):
        raise InvalidConfig(f"{labels.shape} labels for {features.shape[0]} rows", field="y",
                            hint="give one label per row")
    if task == "regression":
        labels = labels.astype(np.float64)
        if not np.isfinite(labels).all():
            raise InvalidConfig("targets hold NaN or infinite values", field="y", hint="drop those rows")
    return features, labels
