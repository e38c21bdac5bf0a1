"""The adapter protocol every framework module implements, and the types they share.

An adapter is stateless: it saves a live model into ``<root>/model/``, loads it back as a
:class:`LoadedModel`, wraps a live model the same way (so in-memory and reloaded models predict
through one code path), exports it to ONNX and recognises its own files by signature.
Heavy libraries (torch, tensorflow, onnxruntime) are imported inside methods only, so
``import podium`` stays cheap for the operator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

MODEL_DIR = "model"
ONNX_OPSET = 18  # new enough for current converters, old enough for KServe's ONNX runtimes


class Framework(StrEnum):
    """Values match ``podium.api.submission.Framework`` so spec and manifest compare directly."""

    SKLEARN = "sklearn"
    KERAS = "keras"
    PYTORCH = "pytorch"
    ONNX = "onnx"


class ModelFiles(BaseModel):
    """Where the native model lives inside the artifact and how to read it back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str  # cloudpickle | keras | torch.export | torchscript | state_dict | onnx
    path: str  # relative to the artifact root, POSIX separators
    input_dtype: str | None = None  # dtype the model is fed (after any preprocessor)
    architecture: str | None = None  # "module:qualname" for the state_dict fallback
    init_kwargs: dict[str, Any] | None = None
    saved_model: str | None = None  # TF SavedModel directory for KServe's tensorflow runtime


@dataclass(frozen=True)
class ModelOutput:
    """Raw model output before it becomes :class:`~podium.predictions.Predictions`.

    ``labels``: predicted labels or regression values, when the model gives them directly.
    ``scores``: (n, k) probabilities or logits. ``classes``: the labels of the score columns,
    when the model itself knows them (scikit-learn's ``classes_``).
    """

    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    classes: np.ndarray | None = None


class LoadedModel(Protocol):
    def predict(self, features: Any) -> ModelOutput: ...


class FrameworkAdapter(ABC):
    framework: ClassVar[Framework]
    library: ClassVar[str]  # distribution whose version goes into the manifest

    @abstractmethod
    def owns(self, model: object) -> bool:
        """True when ``model`` is a live object (or file path) of this framework."""

    @abstractmethod
    def save(self, model: Any, root: Path, example: np.ndarray | None) -> ModelFiles:
        """Write the model under ``root/model/``; ``example`` is model input (after preprocessing)."""

    @abstractmethod
    def load(self, root: Path, files: ModelFiles) -> LoadedModel: ...

    @abstractmethod
    def wrap(self, model: Any, files: ModelFiles | None = None) -> LoadedModel:
        """The live model behind the same interface as a loaded one."""

    @abstractmethod
    def export_onnx(self, model: Any, dest: Path, example: np.ndarray | None) -> None:
        """Write ``dest`` (an .onnx file); raise on any failure, the caller turns it into a warning."""

    @abstractmethod
    def sniff(self, path: Path, root: Path) -> ModelFiles | None:
        """``ModelFiles`` (path relative to ``root``) when the file is this framework's, else None."""

    def version(self) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.library)
        except PackageNotFoundError:
            return None


def as_array(features: Any, dtype: str | None = "float32") -> np.ndarray:
    """Features as one numeric array; a clear error for text columns that need a preprocessor."""
    values = features.to_numpy() if hasattr(features, "to_numpy") else np.asarray(features)
    if dtype is None:
        return values
    try:
        return values.astype(dtype, copy=False)
    except (TypeError, ValueError) as error:
        from podium.frameworks.errors import ModelInputError

        raise ModelInputError(
            f"features cannot be converted to {dtype} ({error})",
            field="features",
            hint="encode non-numeric columns in a preprocessor submitted with the model",
        ) from error


def example_dtype(example: np.ndarray | None) -> str:
    """Integer examples (token ids, categories) keep int64; everything else is fed as float32."""
    if example is not None and np.issubdtype(example.dtype, np.integer):
        return "int64"
    return "float32"


def zip_names(path: Path) -> list[str] | None:
    """Member names when ``path`` is a readable zip file, else None."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
