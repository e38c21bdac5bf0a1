"""The adapter protocol every framework module implements, and the types they share.

An adapter is stateless: it saves a live model into ``<root>/model/``, loads it back as a
:class:`LoadedModel`, wraps a live model the same way (so in-memory and reloaded models predict
through one code path), exports it to ONNX and recognises its own files by signature.
Heavy libraries (torch, tensorflow, onnxruntime) are imported inside methods only, so
``import podium`` stays cheap for the operator.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
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


def fit_rows(values: np.ndarray, row_shape: Sequence[Any] | None) -> np.ndarray:
    """``values`` with each row reshaped to ``row_shape`` when that only changes the layout, never the data.

    Allowed: adding or dropping singleton axes (a channel axis: (8, 8) <-> (8, 8, 1) or (1, 8, 8)) and
    flattening rows to 1-D or back, in C order (``images.reshape(n, -1)``, as torch/Keras ``Flatten`` do).
    Anything else (a transposed layout, another size, unknown dimensions) is returned unchanged, for
    the caller or the model to refuse with its own message.
    """
    if row_shape is None or values.ndim == 0:
        return values
    target = tuple(row_shape)
    if values.shape[1:] == target or not all(isinstance(dim, int | np.integer) and dim >= 0 for dim in target):
        return values
    current = values.shape[1:]
    if math.prod(current) != math.prod(target):
        return values
    kept, wanted = _without_ones(current), _without_ones(target)
    if kept == wanted or len(kept) <= 1 or len(wanted) <= 1:
        return values.reshape(len(values), *(int(dim) for dim in target))
    return values


def _without_ones(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(dim for dim in shape if dim != 1)


def example_dtype(example: np.ndarray | None) -> str:
    """Integer examples (token ids, categories) keep int64; everything else is fed as float32."""
    if example is not None and np.issubdtype(example.dtype, np.integer):
        return "int64"
    return "float32"


_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def limited_cpus() -> int | None:
    """The CPUs this process may use when that is fewer than the machine has: a cgroup CPU quota (a pod's
    CPU limit) or a CPU set (``taskset``, the kubelet's static CPU manager). None when not limited (thread
    pools then keep their own defaults).

    Thread pools size themselves to the machine's cores; under a quota of one CPU, 64 threads spend most
    of their time throttled.
    """
    machine = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        allowed = machine
    quota = quota_cpus(_read(_CGROUP_V2)) or quota_cpus(
        f"{_read(_CGROUP_V1 / 'cpu.cfs_quota_us')} {_read(_CGROUP_V1 / 'cpu.cfs_period_us')}"
    )
    allowed = min(allowed, quota or allowed)
    return allowed if allowed < machine else None


def quota_cpus(cpu_max: str) -> int | None:
    """A cgroup quota ``"<quota> <period>"`` (v2 ``cpu.max``; v1's two files) in whole CPUs, rounded up;
    None when unlimited (``max``, v1's ``-1``) or unreadable."""
    parts = cpu_max.split()
    try:
        quota, period = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None
    if len(parts) != 2 or quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


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
