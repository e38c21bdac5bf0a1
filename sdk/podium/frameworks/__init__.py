"""Framework adapters (scikit-learn, Keras, PyTorch, ONNX) behind one protocol, plus the registry.

Adapter modules import their heavy library lazily, so this package is cheap to import.
"""

from __future__ import annotations

import importlib

from podium.frameworks.base import Framework, FrameworkAdapter, LoadedModel, ModelFiles, ModelOutput
from podium.frameworks.errors import (
    CorruptModel,
    ModelInputError,
    ModelOutputError,
    ModelRuntimeError,
    UnknownFramework,
)

_MODULES: dict[Framework, str] = {
    Framework.SKLEARN: "podium.frameworks.sklearn",
    Framework.KERAS: "podium.frameworks.keras",
    Framework.PYTORCH: "podium.frameworks.torch",
    Framework.ONNX: "podium.frameworks.onnx",
}
# Live-object detection order: exact isinstance checks first, scikit-learn's duck typing last.
DETECTION_ORDER = (Framework.ONNX, Framework.PYTORCH, Framework.KERAS, Framework.SKLEARN)


def get_adapter(framework: str | Framework) -> FrameworkAdapter:
    try:
        key = Framework(framework)
    except ValueError as error:
        raise UnknownFramework(
            f"unknown framework {framework!r}",
            field="framework",
            hint=f"use one of {[f.value for f in Framework]}",
        ) from error
    return importlib.import_module(_MODULES[key]).ADAPTER


__all__ = [
    "DETECTION_ORDER",
    "CorruptModel",
    "Framework",
    "FrameworkAdapter",
    "LoadedModel",
    "ModelFiles",
    "ModelInputError",
    "ModelOutput",
    "ModelOutputError",
    "ModelRuntimeError",
    "UnknownFramework",
    "get_adapter",
]
