"""Helpers shared by the per-framework extractors: everything becomes a short scalar."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

Scalar = str | int | float | bool | None
Metadata = dict[str, Scalar]

_MAX_TEXT = 256  # leaderboard cells, not documents


def to_scalar(value: Any) -> Scalar:
    """A JSON- and table-friendly scalar: numbers and strings as is, the rest as a short text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, str) else value[:_MAX_TEXT]
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    return repr(value)[:_MAX_TEXT]


def counts(prefix: str, names: Iterable[str]) -> Metadata:
    """``{"<prefix><name>": count}`` in first-seen order."""
    return {f"{prefix}{name}": count for name, count in Counter(names).items()}


def activation_key(name: str) -> str:
    """One spelling for Keras ``leaky_relu`` and torch ``LeakyReLU``: ``leakyrelu``."""
    return name.lower().replace("_", "")


def shape_text(shape: Iterable[int | None]) -> str:
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


def network_metadata(
    framework: str, model: Any, layers: list[Any], *, total: int, trainable: int, activations: list[str]
) -> Metadata:
    """The columns Keras and PyTorch networks share: layer and parameter counts, activations."""
    return {
        "ml_framework": framework,
        "model_type": type(model).__name__,
        "deep_learning": True,
        "n_layers": len(layers),
        "n_params": total,
        "n_trainable_params": trainable,
        "n_non_trainable_params": total - trainable,
        **counts("layer_", (type(layer).__name__ for layer in layers)),
        "activations": ",".join(activations) or None,
        **counts("act_", activations),
    }
