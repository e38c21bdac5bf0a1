"""ONNX export of a submitted model, checked against the native model; failure is a warning."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from podium.artifacts.manifest import OnnxInfo
from podium.frameworks import Framework, FrameworkAdapter, ModelFiles, get_adapter
from podium.frameworks.base import MODEL_DIR, relative
from podium.frameworks.outputs import to_predictions
from podium.predictions import Predictions

ONNX_FILENAME = "model.onnx"
TOLERANCE = 1e-4  # float32 ONNX kernels vs float64 sklearn: agreement to ~1e-6 is typical


def export_onnx(
    adapter: FrameworkAdapter,
    model: Any,
    root: Path,
    files: ModelFiles,
    example: np.ndarray | None,
    class_labels: Sequence[Any] | None,
    task: str | None,
) -> OnnxInfo:
    import onnx

    from podium.frameworks.onnx import opset

    if adapter.framework is Framework.ONNX:
        proto = onnx.load_model(str(root / files.path))
        return OnnxInfo(available=True, path=files.path, opset=opset(proto), checked=True)  # its own export
    dest = root / MODEL_DIR / ONNX_FILENAME
    try:
        with warnings.catch_warnings():  # converters are chatty; only the outcome matters here
            warnings.simplefilter("ignore")
            adapter.export_onnx(model, dest, example)
        proto = onnx.load_model(str(dest))
        onnx.checker.check_model(proto)
        exported = ModelFiles(format="onnx", path=relative(dest, root))
        checked = example is not None and _check_agrees(
            adapter, model, files, root, exported, example, class_labels, task
        )
    except Exception as error:  # any converter failure: keep the native model, record why
        dest.unlink(missing_ok=True)
        reason = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"[:500]
        warnings.warn(
            f"ONNX export of the {adapter.framework.value} model failed ({reason}); "
            "the submission is still evaluated with its native runtime",
            stacklevel=4,  # the caller of save_submission
        )
        return OnnxInfo(available=False, error=reason)
    return OnnxInfo(available=True, path=exported.path, opset=opset(proto), checked=checked)


def _check_agrees(
    adapter: FrameworkAdapter,
    model: Any,
    files: ModelFiles,
    root: Path,
    exported: ModelFiles,
    example: np.ndarray,
    class_labels: Sequence[Any] | None,
    task: str | None,
) -> bool:
    """Raise when the export disagrees; True when it also gives exactly the native labels."""
    # A second batch in another order and size catches exports that baked in the example's values
    # (tracing through NumPy) or its batch size.
    native, converted = adapter.wrap(model, files), get_adapter(Framework.ONNX).load(root, exported)
    same_labels = True
    for batch in (example, np.concatenate([example[::-1], example[:1]])):
        expected, actual = _predict(native, batch, class_labels, task), _predict(converted, batch, class_labels, task)
        problem = disagreement(expected, actual)
        if problem:
            raise ValueError(f"the ONNX model disagrees with the native model on the example data: {problem}")
        same_labels = same_labels and (
            expected.proba is None  # labels or values alone: disagreement() compared them already
            or bool((np.asarray(actual.labels).astype(str) == np.asarray(expected.labels).astype(str)).all())
        )
    return same_labels


def _predict(
    loaded: Any, batch: np.ndarray, class_labels: Sequence[Any] | None, task: str | None
) -> Predictions:
    return to_predictions(loaded.predict(batch), rows=len(batch), class_labels=class_labels, task=task)


def disagreement(expected: Predictions, actual: Predictions, tolerance: float = TOLERANCE) -> str | None:
    """None when two predictions agree (probabilities or values within tolerance, labels equal)."""
    if expected.proba is not None:
        if actual.proba is None or actual.proba.shape != expected.proba.shape:
            return "class probabilities are missing or differently shaped"
        gap = float(np.abs(actual.proba - expected.proba).max(initial=0.0))
        return None if gap <= tolerance else f"probabilities differ by up to {gap:.2e}"
    if np.issubdtype(np.asarray(expected.labels).dtype, np.floating):
        if not np.allclose(actual.labels, expected.labels, rtol=tolerance, atol=tolerance):
            return f"values differ by up to {float(np.abs(actual.labels - expected.labels).max()):.2e}"
        return None
    same = np.asarray(actual.labels).astype(str) == np.asarray(expected.labels).astype(str)
    return None if same.all() else f"{int((~same).sum())} of {len(same)} labels differ"
