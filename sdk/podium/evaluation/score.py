"""The trusted score step: predictions + holdout labels + split -> public and private metrics.

It runs in a pod that can read the labels, so it never loads a model or unpickles anything: the
predictions arrive as a pickle-free ``.npz`` from the sandboxed predict step, or straight from a
participant (predictions-only submissions). It writes ``scores.json`` (all, public and private metrics)
for the operator to store out of participants' reach, and a short summary with the public metrics only
to the pod's termination-message path, where the operator picks it up.

CLI::

    python -m podium.evaluation.score --predictions URI --labels URI --task classification \\
        --labels-list cat,dog --split URI --out DIR [--termination-log PATH]

URIs are paths, ``file://`` or ``s3://``. Exit status 0 on success, 1 on bad input (the message, naming
what is wrong and how to fix it, goes to the termination log too), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
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
from podium.metrics import Task, encode_classification, metrics_from_codes, regression_metrics
from podium.predictions import Predictions, load_predictions
from podium.split import HoldoutSplit

SCORES_FILE = "scores.json"
FORMAT_VERSION = 1
TERMINATION_LIMIT = 4096  # bytes Kubernetes keeps of a termination message

Metrics = dict[str, float | None]  # None where a metric is undefined (e.g. AUC of a one-class slice)
Scorer = Callable[[np.ndarray | None], Metrics]  # metrics of the given rows (None: all rows)


class RowCounts(BaseModel):
    all: int
    public: int
    private: int


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
    y_true = read_labels(labels)
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
    if not Path(path).is_file():
        raise InvalidPredictions(f"predictions file {path} does not exist", field="predictions",
                                 hint="check the --predictions path or URI")
    try:
        return load_predictions(path)
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
                            hint="pass --labels-list a,b,c or --class-labels-json")
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


def _class_labels(args: argparse.Namespace) -> list[Any] | None:
    if args.class_labels_json is not None:
        try:
            values = json.loads(args.class_labels_json)
        except json.JSONDecodeError as error:
            raise InvalidConfig(f"--class-labels-json is not JSON ({error})", field="class_labels",
                                hint='give a JSON list, e.g. ["cat", "dog"] or [0, 1]') from None
        if not isinstance(values, list):
            raise InvalidConfig("--class-labels-json must be a JSON list", field="class_labels",
                                hint='give a JSON list, e.g. ["cat", "dog"] or [0, 1]')
        return values
    if args.labels_list is not None:
        return [value.strip() for value in args.labels_list.split(",")]
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m podium.evaluation.score", description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", required=True, help="predictions .npz (path, file:// or s3:// URI)")
    parser.add_argument("--labels", required=True, help="holdout labels (CSV, Parquet, .npy, .npz)")
    parser.add_argument("--task", required=True, choices=["classification", "regression"])
    classes = parser.add_mutually_exclusive_group()
    classes.add_argument("--labels-list", help="comma-separated class labels, e.g. cat,dog")
    classes.add_argument("--class-labels-json", help='class labels as a JSON list, e.g. [0, 1, 2]')
    parser.add_argument("--split", help="public/private split JSON; omit to score every row as public")
    parser.add_argument("--out", required=True, help="directory (or s3:// prefix) for scores.json")
    parser.add_argument("--termination-log", type=Path, help="where to write the summary, e.g. /dev/termination-log")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="podium-score-") as tmp:
            staged = Path(tmp)
            out = storage.parse(args.out).path  # None: an object-store prefix, uploaded to below
            result = run_score(
                _stage(args.predictions, staged / "predictions" / "predictions.npz", field="predictions"),
                _stage(args.labels, staged / "labels" / storage.parse(args.labels).name, field="labels"),
                task=args.task,
                class_labels=_class_labels(args),
                split=_stage(args.split, staged / "split" / "split.json", field="split") if args.split else None,
                out_dir=out or staged / "out",
                termination_log=args.termination_log,
            )
            if out is None:
                storage.upload(staged / "out" / SCORES_FILE, args.out.rstrip("/") + "/" + SCORES_FILE)
    except PodiumError as error:
        if args.termination_log is not None:
            write_summary(args.termination_log, failure(error))
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.termination_log is not None:
            write_summary(args.termination_log, failure(error))
        raise
    print(json.dumps({"rows": result.rows.model_dump(), "public": result.public}))
    return 0


def _stage(uri: str, dest: Path, *, field: str) -> Path:
    """Fetch an input, naming the argument it came from when that fails."""
    try:
        return storage.download(uri, dest)
    except StorageError as error:
        raise type(error)(error.problem, field=field, hint=error.hint) from None


if __name__ == "__main__":
    sys.exit(main())
