"""The untrusted predict step: run a submitted model on the holdout features, nothing else.

    python -m podium.evaluation.predict --artifact PATH --features PATH --out DIR [--preprocessor PATH] \\
        [--batch-rows N] [--termination-log PATH]

(the arguments are :class:`~podium.evaluation.wire.PredictArgs`).

Runs in a sandboxed pod (no credentials, no network, no labels); the trusted stage step has
already copied the artifact and the features to local paths. Writes ``DIR/predictions.npz``
(pickle-free, read by the trusted score step) and ``DIR/metadata.json`` (leaderboard columns
from the manifest plus run facts). Rows go through the model in batches so that a large holdout
does not multiply into large intermediate activations.

On failure the exit code is non-zero and one paragraph (at most 4 KB) naming what is wrong and
how to fix it goes to stderr and to the termination log (``--termination-log``, else
``$PODIUM_TERMINATION_LOG``, else ``/dev/termination-log``, where writable: see
:func:`~podium.evaluation.wire.termination_log_path`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from podium.errors import InvalidConfig, InvalidHoldout, PodiumError
from podium.evaluation.wire import (
    DEFAULT_BATCH_ROWS,
    METADATA_NAME,
    PREDICTIONS_NAME,
    PredictArgs,
    termination_log_path,
)
from podium.predictions import Predictions, save_predictions

MAX_MESSAGE_BYTES = 4096  # Kubernetes truncates termination messages at 4 KB


class Timings(BaseModel):
    """Seconds per stage, so the step's overhead is visible next to the model's own time."""

    load: float
    read: float
    predict: float
    write: float


class PredictResult(BaseModel):
    rows: int
    batches: int
    framework: str
    predictions: Path
    metadata: Path
    has_proba: bool
    timings: Timings


def run_predict(
    artifact: Path,
    features: Path,
    out_dir: Path,
    *,
    preprocessor: Path | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    runtime: Literal["native", "onnx", "auto"] = "native",
) -> PredictResult:
    """Predict every holdout row with the artifact's model; ``preprocessor`` overrides the bundled one.

    ``runtime``: ``"onnx"`` runs the artifact's ONNX export instead of the native model, ``"auto"`` does
    where the export was found equivalent when saved (:func:`~podium.artifacts.load_submission`).
    """
    from podium.artifacts import load_submission
    from podium.data import read_features

    if batch_rows < 1:
        raise InvalidConfig(
            f"batch_rows is {batch_rows}", field="batch_rows", hint="use a positive number of rows"
        )
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    submission = load_submission(artifact, runtime=runtime)
    if preprocessor is not None:
        submission = dataclasses.replace(submission, preprocessor=_load_separate_preprocessor(preprocessor))
    load = lap()
    data = read_features(features)
    rows = len(data)
    if rows == 0:
        raise InvalidHoldout(
            f"{Path(features).name} has no rows", field="features", hint="stage a non-empty holdout"
        )
    read = lap()
    parts = [
        submission.predict(_rows(data, start, start + batch_rows)) for start in range(0, rows, batch_rows)
    ]
    predictions = _concatenate(parts)
    predict = lap()

    out_dir.mkdir(parents=True, exist_ok=True)
    predictions_path = save_predictions(predictions, out_dir / PREDICTIONS_NAME)
    metadata_path = out_dir / METADATA_NAME
    metadata = _run_metadata(submission, rows=rows, seconds=predict) | {"runtime": submission.runtime}
    metadata_path.write_text(json.dumps(_strict(metadata), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return PredictResult(
        rows=rows,
        batches=len(parts),
        framework=submission.framework.value,
        predictions=predictions_path,
        metadata=metadata_path,
        has_proba=predictions.proba is not None,
        timings=Timings(load=load, read=read, predict=predict, write=lap()),
    )


def _load_separate_preprocessor(path: Path) -> Any:
    from podium.artifacts import load_preprocessor, unpack
    from podium.artifacts.archive import is_archive

    if not is_archive(path):
        return load_preprocessor(path)
    with tempfile.TemporaryDirectory(prefix="podium-preprocessor-") as scratch:
        return load_preprocessor(unpack(path, scratch))


def _rows(data: Any, start: int, stop: int) -> Any:
    return data.iloc[start:stop] if hasattr(data, "iloc") else data[start:stop]


def _concatenate(parts: list[Predictions]) -> Predictions:
    if len(parts) == 1:
        return parts[0]
    labels = np.concatenate([part.labels for part in parts])
    if any(part.proba is None for part in parts):
        return Predictions(labels=labels)
    return Predictions(
        labels=labels, proba=np.concatenate([part.proba for part in parts]), classes=parts[0].classes
    )


def _run_metadata(submission: Any, *, rows: int, seconds: float) -> dict[str, Any]:
    """Flat leaderboard columns: the manifest's extracted metadata plus what this run observed."""
    manifest = submission.manifest
    facts: dict[str, Any] = {
        "framework": submission.framework.value,
        "task": submission.task,
        "predict_rows": rows,
        "predict_seconds": round(seconds, 4),
        "rows_per_second": round(rows / seconds, 1) if seconds > 0 else None,
        "has_preprocessor": submission.preprocessor is not None,
    }
    if manifest is not None:
        facts |= {
            "content_hash": manifest.content_hash,
            "onnx_available": manifest.onnx.available,
            "onnx_opset": manifest.onnx.opset,
            "model_format": manifest.model.format,
            "framework_version": manifest.versions.framework,
        }
    return {**(manifest.metadata if manifest is not None else {}), **facts}


def _strict(metadata: dict[str, Any]) -> dict[str, Any]:
    """What the score step's strict reader accepts: a non-finite number (say from a hand-edited manifest)
    is written as its text, as the metadata extractors write one (``podium.metadata.common.to_scalar``)."""
    return {key: str(value) if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in metadata.items()}


def failure_message(error: BaseException) -> str:
    """One paragraph, at most MAX_MESSAGE_BYTES of UTF-8."""
    if isinstance(error, PodiumError):
        text = f"predict failed: {error}"
    elif isinstance(error, MemoryError):
        text = "predict failed: out of memory. Fix: lower --batch-rows, shrink the model, or ask for a higher memory limit"
    else:
        text = (
            f"predict failed unexpectedly: {type(error).__name__}: {error}. "
            "Fix: run podium.evaluation.predict.run_predict locally on the example data to reproduce it"
        )
    paragraph = " ".join(text.split())
    encoded = paragraph.encode()
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return paragraph
    return encoded[: MAX_MESSAGE_BYTES - 3].decode(errors="ignore") + "..."


def fit_threads_to_cpu_limit() -> int | None:
    """Size thread pools to the pod's CPU limit rather than the node's cores, before any framework is
    imported (torch and TensorFlow read these variables once, at start-up). Returns the limit, if any."""
    from podium.frameworks.base import limited_cpus

    cpus = limited_cpus()
    if cpus is None:
        return None
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, str(cpus))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it NumPy's BLAS keeps its pool
        return cpus
    threadpool_limits(cpus)  # NumPy's BLAS is loaded already
    return cpus


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ banner is noise in pod logs
    fit_threads_to_cpu_limit()
    args = PredictArgs.from_argv(
        argv, prog="python -m podium.evaluation.predict", description=__doc__.split("\n\n")[0]
    )
    try:
        result = run_predict(
            args.artifact,
            args.features,
            args.out,
            preprocessor=args.preprocessor,
            batch_rows=args.batch_rows,
        )
    except Exception as error:  # every failure must reach the termination log, not only PodiumError
        message = failure_message(error)
        if not isinstance(error, PodiumError):  # a bug or an exotic failure: keep the trace in the pod log
            traceback.print_exception(error, file=sys.stderr)
        print(message, file=sys.stderr)
        log = termination_log_path(args.termination_log)
        if log is not None:
            try:
                log.write_text(message)
            except OSError as log_error:
                print(f"(could not write the termination log {log}: {log_error})", file=sys.stderr)
        return 1 if isinstance(error, PodiumError) else 2
    print(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
