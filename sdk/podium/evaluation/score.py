"""The trusted score step: predictions + holdout labels + split -> public and private metrics.

It runs in a pod that can read the labels, so it never loads a model or unpickles anything: the
predictions arrive as a pickle-free ``.npz`` from the sandboxed predict step, or straight from a
participant (predictions-only submissions). Public metrics (plus the model metadata from the predict
step) go to ``--results`` (a :class:`~podium.evaluation.wire.PublicResult`), which the operator reads and
publishes; private metrics go to ``--private`` (a :class:`~podium.evaluation.wire.PrivateResult`), a prefix
only the operator can read, published only when the competition closes. A short summary with the public
metrics only goes to the pod's termination-message path.

What the predict step wrote is read as hostile: opened without following links or blocking, regular
files within a size limit only (:func:`~podium.predictions.open_untrusted`), the predictions checked
array by array before they are read (:func:`~podium.predictions.load_predictions`), the metadata parsed
by the one strict JSON reader (:func:`~podium.evaluation.wire.strict_json`: no NaN or infinities).

CLI (the arguments are :class:`~podium.evaluation.wire.ScoreArgs`)::

    python -m podium.evaluation.score --predictions URI --labels URI --task classification \\
        --class-labels '["cat", "dog"]' --results URI --private URI [--split URI] [--metadata PATH] \\
        [--termination-log PATH]

URIs are paths, ``file://`` or ``s3://``. Exit status 0 on success, 1 on bad input (the message, naming
what is wrong and how to fix it, goes to the termination log too), 2 on bad arguments.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from podium import storage
from podium.data import read_labels
from podium.errors import InvalidConfig, InvalidHoldout, InvalidPredictions, PodiumError, StorageError
from podium.evaluation.wire import (
    MAX_RESULT_BYTES,
    InvalidJSON,
    PrivateResult,
    PublicResult,
    RowCounts,
    ScoreArgs,
    strict_json,
    termination_log_path,
)
from podium.metrics import Task, encode_classification, metrics_from_codes, regression_metrics
from podium.predictions import Predictions, load_predictions, open_untrusted
from podium.split import HoldoutSplit
from podium.uri import parse

SCORES_FILE = "scores.json"
FORMAT_VERSION = 1
TERMINATION_LIMIT = 4096  # bytes Kubernetes keeps of a termination message

Metrics = dict[str, float | None]  # None where a metric is undefined (e.g. AUC of a one-class slice)
Scorer = Callable[[np.ndarray | None], Metrics]  # metrics of the given rows (None: all rows)


class ScoreResult(BaseModel):
    """Contents of ``scores.json``."""

    format_version: int = FORMAT_VERSION
    task: Task
    rows: RowCounts
    all: Metrics
    public: Metrics
    private: Metrics


class Summary(BaseModel):
    """The termination message: public results only, or what went wrong."""

    status: Literal["succeeded", "failed"]
    rows: RowCounts | None = None
    public: Metrics = {}
    error: str | None = None
    field: str | None = None


def run_score(
    predictions: Path,
    labels: Path,
    *,
    task: Task,
    class_labels: Sequence[Any] | None,
    split: Path | None,
    out_dir: Path,
    termination_log: Path | None = None,
) -> ScoreResult:
    """Score ``predictions`` against the holdout ``labels``; without ``split`` every row is public.

    Writes ``out_dir/scores.json`` and, when given, the summary to ``termination_log``; raises a
    :class:`PodiumError` (after writing it to ``termination_log``) on bad input.
    """
    try:
        result = _score(predictions, labels, task=task, class_labels=class_labels, split=split)
    except PodiumError as error:
        if termination_log is not None:
            write_summary(termination_log, failure(error))
        raise
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SCORES_FILE).write_text(result.model_dump_json(indent=2))
    if termination_log is not None:
        write_summary(termination_log, Summary(status="succeeded", rows=result.rows, public=result.public))
    return result


def _score(
    predictions: Path, labels: Path, *, task: Task, class_labels: Sequence[Any] | None, split: Path | None
) -> ScoreResult:
    if task not in ("classification", "regression"):
        raise InvalidConfig(f"unknown task {task!r}", field="task", hint="use classification or regression")
    # Classes as text exactly as written ("NA" and "01" are classes); targets as read, made numbers (or
    # refused, naming the field) by the regression metrics, after the arguments and predictions are checked.
    y_true = read_labels(labels, task="classification") if task == "classification" else read_labels(labels)
    if len(y_true) == 0:
        raise InvalidHoldout("the holdout has no rows", field="labels", hint="upload a non-empty holdout")
    submitted = _load(predictions)
    public, private = _parts(split, len(y_true))
    score = (_classification_scorer(y_true, submitted, class_labels) if task == "classification"
             else _regression_scorer(y_true, submitted, class_labels))
    everything = score(None)
    return ScoreResult(
        task=task,
        rows=RowCounts(all=len(y_true), public=len(public), private=len(private)),
        all=everything,
        public=everything if len(public) == len(y_true) else score(public),
        private=score(private) if len(private) else {},
    )


def _load(path: Path) -> Predictions:
    """The predictions, read as the untrusted predict step's output: see :func:`load_predictions`."""
    try:
        return load_predictions(path)
    except PodiumError:
        raise
    except ValueError as error:
        raise InvalidPredictions(str(error), field="predictions",
                                 hint="write predictions with podium.predictions.save_predictions") from None


def _parts(split: Path | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if split is None:
        return np.arange(n_rows), np.empty(0, dtype=np.int64)
    parts = HoldoutSplit.load(split)
    if parts.n_rows != n_rows:
        raise InvalidHoldout(f"the split covers {parts.n_rows} rows but the holdout has {n_rows}", field="split",
                             hint="recompute the split for this holdout")
    return parts.public, parts.private


def _classification_scorer(
    y_true: np.ndarray, submitted: Predictions, class_labels: Sequence[Any] | None
) -> Scorer:
    if class_labels is None:
        raise InvalidConfig("a classification playground needs its class labels", field="class_labels",
                            hint="pass --class-labels '[\"a\", \"b\", \"c\"]'")
    encoded = encode_classification(y_true, submitted.labels, labels=class_labels,
                                    proba=submitted.proba, proba_classes=submitted.classes)

    def score(rows: np.ndarray | None) -> Metrics:
        return _clean(metrics_from_codes(encoded if rows is None else encoded.take(rows)))

    return score


def _regression_scorer(
    y_true: np.ndarray, submitted: Predictions, class_labels: Sequence[Any] | None
) -> Scorer:
    if class_labels:
        raise InvalidConfig("class labels were given for a regression playground", field="class_labels",
                            hint="drop the class label list, or use --task classification")
    if submitted.proba is not None:
        raise InvalidPredictions("contains class probabilities, but this is a regression playground",
                                 field="predictions.proba", hint="submit predicted values only")

    def score(rows: np.ndarray | None) -> Metrics:
        if rows is None:
            return _clean(regression_metrics(y_true, submitted.labels))
        return _clean(regression_metrics(y_true[rows], submitted.labels[rows]))

    return score


def _clean(metrics: dict[str, float]) -> Metrics:
    return {name: (None if math.isnan(value) else value) for name, value in metrics.items()}


def failure(error: BaseException) -> Summary:
    if isinstance(error, PodiumError):
        return Summary(status="failed", error=str(error), field=error.field)
    return Summary(status="failed", error=f"internal error in the score step: {type(error).__name__}: {error}")


def write_summary(path: Path, summary: Summary) -> None:
    """Write ``summary`` as JSON within Kubernetes' termination-message limit, shortening the error if need be."""
    text = summary.model_dump_json()
    excess = len(text.encode()) - TERMINATION_LIMIT
    if excess > 0 and summary.error:
        shorter = summary.error.encode()[: max(len(summary.error.encode()) - excess - 3, 0)]
        text = summary.model_copy(update={"error": shorter.decode(errors="ignore") + "..."}).model_dump_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


MAX_METADATA_BYTES = MAX_RESULT_BYTES // 2  # what the predict step may pass on, so the result file stays readable


def run_score_job(args: ScoreArgs, *, termination_log: Path | None = None) -> PublicResult:
    """The step as an evaluation Job runs it: fetch the inputs, score, store both result files."""
    metadata = _model_metadata(args.metadata)
    with tempfile.TemporaryDirectory(prefix="podium-score-") as scratch_dir:
        scratch = Path(scratch_dir)
        result = run_score(
            _fetch(args.predictions, scratch, "predictions"),
            _fetch(args.labels, scratch, "labels"),
            task=args.task,
            class_labels=args.class_labels or None,
            split=_fetch(args.split, scratch, "split") if args.split else None,
            out_dir=scratch / "out",
            termination_log=termination_log,
        )
    public = PublicResult(public=result.public, rows=result.rows, metadata=metadata)
    storage.write_bytes(args.results, public.model_dump_json().encode())
    storage.write_bytes(args.private, PrivateResult(private=result.private, all=result.all).model_dump_json().encode())
    return public


def _fetch(uri: str, scratch: Path, name: str) -> Path:
    """A local input as it is, an object fetched into ``scratch``; a failure names the argument at fault."""
    try:
        location = parse(uri)
        if location.path is not None:
            return location.path
        return storage.download(uri, scratch / f"{name}{Path(location.name).suffix}")
    except StorageError as error:
        raise type(error)(error.problem, field=name, hint=error.hint) from None


def _model_metadata(path: Path | None) -> dict[str, Any]:
    """The predict step's metadata.json, written beside the untrusted model; {} when there is none.

    Opened as :func:`open_untrusted` opens it (no links, no FIFOs, at most MAX_METADATA_BYTES) and parsed
    by the one strict reader (:func:`strict_json`: no NaN or infinities, which would break the status).
    """
    if path is None:
        return {}
    hint = "let podium.evaluation.predict write it: a plain JSON object of a few short, finite values"
    file = open_untrusted(path, field="metadata", limit=MAX_METADATA_BYTES, hint=hint)
    if file is None:
        return {}
    with file:
        data = file.read(MAX_METADATA_BYTES + 1)
    try:
        value = strict_json(data, limit=MAX_METADATA_BYTES)
    except InvalidJSON as error:
        raise InvalidPredictions(f"{path.name} {error}", field="metadata", hint=hint) from None
    if not isinstance(value, dict):
        raise InvalidPredictions(f"{path.name} holds a JSON {type(value).__name__}, not an object", field="metadata",
                                 hint=hint)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = ScoreArgs.from_argv(argv, prog="python -m podium.evaluation.score", description=__doc__.split("\n")[0])
    log = termination_log_path(args.termination_log)
    try:
        public = run_score_job(args, termination_log=log)
    except PodiumError as error:
        if log is not None:
            write_summary(log, failure(error))
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if log is not None:
            write_summary(log, failure(error))
        raise
    print(json.dumps({"rows": public.rows.model_dump() if public.rows else None, "public": public.public}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
