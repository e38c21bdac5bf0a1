"""Run one training: read the data, dispatch to the algorithm, save and upload the artifact."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import storage
from podium.api.training import META_ALGORITHMS, hyperparameters_model
from podium.errors import PodiumError
from podium.evaluation.wire import report_failure
from podium.training.inputs import choose_device, read_training_data
from podium.training.report import Reporter, write_json
from podium.training.wire import TrainArgs

logger = logging.getLogger(__name__)
# Exit 1: the inputs are wrong (the Job's podFailurePolicy fails at once); anything else may be retried.
BAD_INPUT = 1


def train(args: TrainArgs, scratch: Path) -> dict[str, Any]:
    """Train, save the artifact to its URL; returns the history (also PUT to its URL)."""
    settings = hyperparameters_model(args.algorithm).model_validate(args.settings())
    device = choose_device(args.device) if args.algorithm in META_ALGORITHMS else "cpu"
    reporter = Reporter(args.progress, interval=args.progress_seconds, algorithm=args.algorithm, device=device)
    reporter.update(state="starting", force=True)
    features, labels = read_training_data(args.features, args.labels, args.task, scratch)
    class_labels = list(args.class_labels or [])
    if args.algorithm in META_ALGORITHMS:
        from podium.training.meta import train_meta

        model, example, history = train_meta(args, settings, features, labels, class_labels, reporter, device)  # type: ignore[arg-type]
        outputs = class_labels  # the adapted model scores the playground's classes in their order
    else:
        from podium.training.search import train_search

        model, example, found, history = train_search(args, settings, features, labels, reporter, scratch)  # type: ignore[arg-type]
        outputs = found or class_labels  # a Keras model's output columns are its own classes, in its order
    reporter.update(state="saving", force=True)
    from podium.artifacts import save_submission

    archive = scratch / "model.tar.gz"
    save_submission(model, archive, example_data=example, class_labels=outputs or None, task=args.task)
    storage.upload(archive, args.artifact)
    write_json(args.history, history)
    reporter.update(state="done", force=True)
    return history


def main(argv: Sequence[str] | None = None) -> int:
    args = TrainArgs.from_argv(argv, prog="python -m podium.training", description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="podium-train-") as scratch:
        try:
            train(args, Path(scratch))
        except (PodiumError, ValueError) as error:
            _fail(args, f"training failed: {error}")  # a PodiumError names its field and the fix
            return BAD_INPUT
    return 0


def _fail(args: TrainArgs, message: str) -> None:
    report_failure(message, args.termination_log)
    with contextlib.suppress(PodiumError):
        write_json(args.progress, {"state": "failed", "algorithm": args.algorithm, "message": message[:4000]})
