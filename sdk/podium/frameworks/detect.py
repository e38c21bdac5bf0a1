"""Which framework does a model belong to: from the live object, the manifest, or file signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from podium.frameworks import DETECTION_ORDER, Framework, FrameworkAdapter, ModelFiles, get_adapter
from podium.frameworks.base import MODEL_DIR
from podium.frameworks.errors import CorruptModel, UnknownFramework

MANIFEST = "manifest.json"
# File signatures are checked specific-first: zips by member names, then ONNX protobuf, then pickle.
_SNIFF_ORDER = (Framework.KERAS, Framework.PYTORCH, Framework.ONNX, Framework.SKLEARN)
# When no signature matches, a familiar suffix means a damaged file rather than an unknown one.
_SUFFIXES = {
    ".keras": Framework.KERAS,
    ".h5": Framework.KERAS,
    ".onnx": Framework.ONNX,
    ".pkl": Framework.SKLEARN,
    ".pickle": Framework.SKLEARN,
    ".joblib": Framework.SKLEARN,
    ".pt": Framework.PYTORCH,
    ".pt2": Framework.PYTORCH,
    ".pth": Framework.PYTORCH,
}
_SUPPORTED = (
    "a scikit-learn estimator/Pipeline, a Keras 3 model, a torch.nn.Module or an ONNX ModelProto/.onnx file"
)


def detect_model(model: Any) -> FrameworkAdapter:
    """The adapter for a live model object."""
    for framework in DETECTION_ORDER:
        adapter = get_adapter(framework)
        if adapter.owns(model):
            return adapter
    raise UnknownFramework(
        f"cannot tell which framework a {type(model).__module__}.{type(model).__qualname__} belongs to",
        field="model",
        hint=f"submit {_SUPPORTED}",
    )


def sniff_file(path: Path, root: Path) -> tuple[FrameworkAdapter, ModelFiles] | None:
    """The adapter and file description for one model file, from its signature, or None."""
    for framework in _SNIFF_ORDER:
        adapter = get_adapter(framework)
        files = adapter.sniff(path, root)
        if files is not None:
            return adapter, files
    return None


def find_model(path: Path) -> tuple[Path, FrameworkAdapter, ModelFiles]:
    """Locate and identify the model in a manifest-less directory or a bare model file.

    Returns the root that ``ModelFiles.path`` is relative to. In a directory, native formats win
    over ``.onnx`` files because Podium writes an ONNX export next to the native model.
    """
    if path.is_file():
        found = sniff_file(path, path.parent)
        if found is None:
            raise _unrecognised([path])
        return (path.parent, *found)
    folder = path / MODEL_DIR if (path / MODEL_DIR).is_dir() else path
    files = [file for file in sorted(folder.iterdir()) if file.is_file()]
    recognised = [found for found in (sniff_file(file, path) for file in files) if found is not None]
    if not recognised:
        raise _unrecognised(files, folder)
    recognised.sort(key=lambda found: found[1].format == "onnx")
    return (path, *recognised[0])


def detect_framework(path: Path) -> Framework:
    """The framework of an artifact directory (manifest first, then file signatures) or model file."""
    manifest = path / MANIFEST
    if path.is_dir() and manifest.is_file():
        try:
            return Framework(json.loads(manifest.read_text())["framework"])
        except (ValueError, KeyError, TypeError):
            pass  # a damaged manifest: the files themselves still tell
    return find_model(path)[1].framework


def _unrecognised(files: list[Path], folder: Path | None = None) -> UnknownFramework | CorruptModel:
    damaged = next((file for file in files if file.suffix.lower() in _SUFFIXES), None)
    if damaged is not None:
        return CorruptModel(
            f"{damaged.name} is named like a {_SUFFIXES[damaged.suffix.lower()].value} model but its content is "
            "not readable (truncated or corrupt)",
            field="model",
            hint="save the model again and upload the complete file",
        )
    where = f"{folder.name}/ (files: {[file.name for file in files[:10]]})" if folder else files[0].name
    return UnknownFramework(
        f"{where} is not a model file Podium recognises",
        field="model",
        hint=f"submit {_SUPPORTED}, saved with podium.artifacts.save_submission",
    )
