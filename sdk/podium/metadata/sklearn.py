"""scikit-learn: estimator type and every hyperparameter, flattened through Pipelines and nesting."""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.metadata.common import Metadata, to_scalar

# Fitted arrays that are model parameters (linear models, MLPs); trees/ensembles report no count.
_PARAMETER_ATTRIBUTES = ("coef_", "intercept_", "coefs_", "intercepts_")


def extract(model: Any, example: np.ndarray | None = None) -> Metadata:
    steps = list(_estimators(model))
    final = steps[-1]
    metadata: Metadata = {
        "ml_framework": "sklearn",
        "model_type": type(model).__name__,
        "final_estimator": type(final).__name__,
        "estimator_type": estimator_type(model),
        "deep_learning": False,
        "n_features": to_scalar(getattr(model, "n_features_in_", None)),
    }
    if hasattr(final, "classes_"):
        metadata["n_classes"] = len(final.classes_)
    n_params = sum(
        _size(getattr(step, name)) for step in steps for name in _PARAMETER_ATTRIBUTES if hasattr(step, name)
    )
    if any(hasattr(step, name) for step in steps for name in _PARAMETER_ATTRIBUTES):
        metadata["n_params"] = n_params
    metadata.update(_training(final))
    metadata.update(hyperparameters(model))
    return metadata


def hyperparameters(model: Any) -> Metadata:
    """``get_params(deep=True)``: nested estimators become their class name, their parameters
    appear as ``<step>__<param>``; lists of steps are dropped because they repeat those columns."""
    flat: Metadata = {}
    for key, value in sorted(model.get_params(deep=True).items()):
        if hasattr(value, "get_params"):
            flat[key] = type(value).__name__
        elif isinstance(value, list | tuple) and any(_holds_estimator(item) for item in value):
            continue
        else:
            flat[key] = to_scalar(value)
    return flat


def _training(final: Any) -> Metadata:
    """Model Share AI's ``loss``/``optimizer`` for sklearn: the loss and the solver where they exist."""
    training: Metadata = {}
    loss = getattr(final, "loss", None)
    if loss is not None:
        training["loss"] = to_scalar(loss)
    solver = getattr(final, "solver", None)
    if solver is not None:
        training["optimizer"] = to_scalar(solver)
    if hasattr(final, "coefs_"):  # MLP: the layer structure, as for networks
        training["n_layers"] = len(final.coefs_)
        training["layer_shapes"] = " | ".join(str(tuple(weights.shape)) for weights in final.coefs_)
        training["activations"] = ",".join(
            [final.activation] * (len(final.coefs_) - 1) + [final.out_activation_]
        )
    n_iter = getattr(final, "n_iter_", None)
    if n_iter is not None:
        training["epochs"] = to_scalar(np.max(n_iter))
    return training


def _estimators(model: Any) -> list[Any]:
    """The estimator and, for Pipelines, its steps in order (the last one predicts)."""
    if hasattr(model, "steps"):
        return [model, *[step for _, step in model.steps if hasattr(step, "get_params")]]
    return [model]


def estimator_type(model: Any) -> str | None:
    from sklearn.base import is_classifier, is_clusterer, is_outlier_detector, is_regressor

    checks = {
        "classifier": is_classifier,
        "regressor": is_regressor,
        "clusterer": is_clusterer,
        "outlier_detector": is_outlier_detector,
    }
    for name, check in checks.items():
        try:
            if check(model):
                return name
        except (AttributeError, TypeError):  # look-alike estimators without sklearn tags
            continue
    return None


def _holds_estimator(item: Any) -> bool:
    return hasattr(item, "get_params") or (
        isinstance(item, tuple) and any(hasattr(part, "get_params") for part in item)
    )


def _size(values: Any) -> int:
    if isinstance(values, list):
        return sum(int(np.size(array)) for array in values)
    return int(np.size(values))
