"""Model metadata flattened into leaderboard columns: a flat ``dict[str, str | int | float | bool | None]``.

Column families (Model Share AI parity and beyond): ``ml_framework``, ``model_type``,
``deep_learning``, ``n_params`` / ``n_trainable_params``, ``n_layers``, ``layer_<Type>`` counts,
``act_<name>`` counts and the ``activations`` sequence, ``layer_shapes``, ``loss``,
``optimizer``, ``epochs``; scikit-learn hyperparameters under their ``get_params`` names
(``C``, ``clf__C``); ONNX ``opset`` and ``op_<Type>`` counts. ``model_size_bytes`` is added by
the artifact writer from the saved files.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from podium.frameworks.base import Framework
from podium.metadata.common import Metadata, Scalar

_MODULES: dict[Framework, str] = {
    Framework.SKLEARN: "podium.metadata.sklearn",
    Framework.KERAS: "podium.metadata.keras",
    Framework.PYTORCH: "podium.metadata.torch",
    Framework.ONNX: "podium.metadata.onnx",
}


def extract_metadata(model: Any, framework: Framework | str, example: np.ndarray | None = None) -> Metadata:
    """Leaderboard columns for a live model; ``example`` (model input) lets networks report layer shapes."""
    module = importlib.import_module(_MODULES[Framework(framework)])
    return module.extract(model, example)


__all__ = ["Metadata", "Scalar", "extract_metadata"]
