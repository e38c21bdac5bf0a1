"""Keras 3 models: the native ``.keras`` file, plus a TF SavedModel for KServe's tensorflow runtime.

The ``.keras`` file is what Podium loads (``safe_mode`` on, so Lambda layers with pickled
bytecode are refused); the SavedModel is exported alongside when the backend allows it and
recorded in the manifest for serving.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from podium.frameworks.base import (
    MODEL_DIR,
    ONNX_OPSET,
    Framework,
    FrameworkAdapter,
    ModelFiles,
    ModelOutput,
    as_array,
    example_dtype,
    fit_rows,
    relative,
    zip_names,
)
from podium.frameworks.errors import CorruptModel

_FILENAME = "model.keras"
_SAVED_MODEL = "saved_model"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class KerasModel:
    def __init__(self, model: Any, input_dtype: str) -> None:
        self.model = model
        self.input_dtype = input_dtype
        self.row_shape = _declared_rows(lambda: model.inputs[0].shape if len(model.inputs) == 1 else None)

    def predict(self, features: Any) -> ModelOutput:
        # predict_on_batch skips Keras' callback and dataset machinery; callers already batch
        inputs = fit_rows(as_array(features, self.input_dtype), self.row_shape)
        output = self.model.predict_on_batch(inputs)
        while isinstance(output, tuple | list):
            output = output[0]
        if isinstance(output, dict):
            output = next(iter(output.values()))
        return ModelOutput(scores=np.asarray(output))


class SavedModelGraph:
    """A TF SavedModel's ``serve`` endpoint, for Keras models whose Python classes are not registered."""

    def __init__(self, loaded: Any, input_dtype: str) -> None:
        self.loaded = loaded  # owns the variables that ``serve`` reads; keep it alive
        self.input_dtype = input_dtype
        self.row_shape = _declared_rows(lambda: loaded.serve.input_signature[0].shape)

    def predict(self, features: Any) -> ModelOutput:
        inputs = fit_rows(as_array(features, self.input_dtype), self.row_shape)
        return ModelOutput(scores=np.asarray(self.loaded.serve(inputs)))


class KerasAdapter(FrameworkAdapter):
    framework = Framework.KERAS
    library = "keras"

    def owns(self, model: object) -> bool:
        import sys

        keras = sys.modules.get("keras")  # a live Keras model means keras is already imported
        return keras is not None and isinstance(model, keras.Model)

    def save(self, model: Any, root: Path, example: np.ndarray | None) -> ModelFiles:
        directory = root / MODEL_DIR
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / _FILENAME
        if example is not None and not model.built:
            model(example[:1])  # subclassed models get their weights on first call
        model.save(path)
        saved_model = _export_saved_model(model, directory / _SAVED_MODEL, root)
        files = ModelFiles(
            format="keras",
            path=relative(path, root),
            input_dtype=example_dtype(example),
            saved_model=saved_model,
        )
        problem = _reload_problem(root, files)
        if problem is None:
            return files
        if saved_model is None:
            raise CorruptModel(
                f"the Keras model cannot be reloaded from model.keras ({problem})",
                field="model",
                hint="decorate custom layers and models with @keras.saving.register_keras_serializable() "
                "and define get_config()",
            )
        # Unregistered custom classes: the .keras file stays for reviewers, predictions use the
        # SavedModel graph, which needs no Python code.
        warnings.warn(
            f"the Keras model cannot be reloaded from model.keras ({problem}); Podium will evaluate its "
            "TF SavedModel export instead. Register custom classes with "
            "@keras.saving.register_keras_serializable() to keep the native format",
            stacklevel=5,  # the caller of save_submission
        )
        return files.model_copy(update={"format": "tf_saved_model", "path": saved_model})

    def load(self, root: Path, files: ModelFiles) -> KerasModel | SavedModelGraph:
        _quiet_tensorflow()
        try:
            if files.format == "tf_saved_model":
                import tensorflow as tf

                return SavedModelGraph(
                    tf.saved_model.load(str(root / files.path)), files.input_dtype or "float32"
                )
            import keras

            model = keras.saving.load_model(root / files.path, compile=False)
        except Exception as error:  # keras wraps zip, h5 and config errors in assorted types
            raise CorruptModel(
                f"the Keras model in {files.path} cannot be read: {type(error).__name__}: {_first_line(error)}",
                field="model",
                hint="save the model with podium.artifacts.save_submission (Keras 3) and upload it completely",
            ) from error
        return KerasModel(model, files.input_dtype or "float32")

    def wrap(self, model: Any, files: ModelFiles | None = None) -> KerasModel:
        return KerasModel(model, (files.input_dtype if files else None) or "float32")

    def export_onnx(self, model: Any, dest: Path, example: np.ndarray | None) -> None:
        # Keras' exporter drives tf2onnx under the TensorFlow backend; ImportError here means
        # tf2onnx is missing and is reported as "ONNX unavailable" by the caller.
        model.export(str(dest), format="onnx", verbose=False, opset_version=ONNX_OPSET)

    def sniff(self, path: Path, root: Path) -> ModelFiles | None:
        names = zip_names(path)
        if names is not None:
            return (
                ModelFiles(format="keras", path=relative(path, root))
                if {"config.json", "metadata.json"} <= set(names)
                else None
            )
        with path.open("rb") as handle:
            legacy = handle.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC  # Keras 2 .h5 files still load
        return ModelFiles(format="keras", path=relative(path, root)) if legacy else None


def _declared_rows(read: Callable[[], Any]) -> tuple[int | None, ...] | None:
    """The per-row input shape a model declares ((8, 8, 1) for Input((8, 8, 1))), when it declares one."""
    try:
        shape = read()
    except Exception:  # subclassed models never called on an Input, multi-input signatures: nothing declared
        return None
    if shape is None:
        return None
    return tuple(dim if isinstance(dim, int) else None for dim in list(shape)[1:])


def _export_saved_model(model: Any, directory: Path, root: Path) -> str | None:
    try:
        model.export(str(directory), format="tf_saved_model", verbose=False)
    except Exception as error:  # other backends or exotic layers: serving falls back to Podium's runtime
        warnings.warn(f"Keras model could not be exported as a TF SavedModel ({error})", stacklevel=5)
        return None
    return relative(directory, root)


def _reload_problem(root: Path, files: ModelFiles) -> str | None:
    """Why the saved .keras file cannot be loaded back (unregistered custom classes), if it cannot."""
    import keras

    try:
        keras.saving.load_model(root / files.path, compile=False)
    except Exception as error:  # whatever Keras raises, the file is not self-contained
        return f"{type(error).__name__}: {_first_line(error)}"
    return None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= 300 else text[:297] + "..."


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


ADAPTER = KerasAdapter()
