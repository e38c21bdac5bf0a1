"""Bayesian HPO in the Job: Optuna TPE over the search space, the best model refitted on all the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from podium import storage
from podium.api.training import SearchHyperparameters
from podium.errors import NotFound
from podium.training.report import Reporter
from podium.training.wire import MAX_DATA_BYTES, TrainArgs

STUDY = "podium"


def _finished_trials(study: Path) -> int:
    """Trials a previous pod finished (complete, failed or pruned; one that was running when it died is not)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{study}")
    return sum(1 for trial in loaded.get_trials(deepcopy=False) if trial.state.is_finished())


def train_search(args: TrainArgs, settings: SearchHyperparameters, features: Any, labels: np.ndarray,
                 reporter: Reporter, scratch: Path) -> tuple[Any, Any, list[Any] | None, dict[str, Any]]:
    """The best model, an example input, its output classes where they are its own (Keras) and the history.

    The study lives in an SQLite file that is also the checkpoint: a restarted pod downloads it, and
    Optuna continues the same study (``load_if_exists``) with the trials still to run.
    """
    from podium.automl.hpo import run_search
    from podium.automl.keras_mlp import is_keras_pipeline, to_keras
    from podium.automl.space import SearchSpace, default_space

    space = SearchSpace.parse(settings.space) if settings.space else default_space(args.task)  # type: ignore[arg-type]
    study = scratch / "study.db"
    done = 0
    if args.checkpoint:
        try:
            study.write_bytes(storage.read_bytes(args.checkpoint, limit=MAX_DATA_BYTES))
            done = _finished_trials(study)
            print(f"resuming the study from its checkpoint: {done} of {settings.trials} trials done", flush=True)
        except NotFound:
            pass
    best: dict[str, Any] = {}
    direction = 1.0 if _maximized(args.metric) else -1.0

    def on_trial(trial: dict[str, Any]) -> None:
        value = trial.get("value")
        if value is not None and (not best or direction * value > direction * best["value"]):
            best.update(value=value, config=trial.get("config"))
        reporter.update(state="training", iteration=int(trial["number"]) + 1, iterations=settings.trials,
                        validation=best.get("value"), best=best.get("config"))
        if args.checkpoint_put:
            storage.upload(_snapshot(study, scratch / "study-copy.db"), args.checkpoint_put)

    # At least one trial even when a previous pod finished them all (it died refitting or uploading).
    result = run_search(features, labels, task=args.task, space=space, trials=max(1, settings.trials - done),  # type: ignore[arg-type]
                        sampler=settings.sampler, seed=settings.seed, metric=args.metric, cv=settings.cv,
                        storage=f"sqlite:///{study}", study_name=STUDY, on_trial=on_trial,
                        workers=min(settings.workers, max(1, settings.trials - done)))
    reporter.update(state="training", validation=result.best_score, best=result.best_config)
    example = features.iloc[:5] if hasattr(features, "iloc") else np.asarray(features)[:5]
    model, classes = result.model, None
    if is_keras_pipeline(model):  # saved as a plain Keras model, the scaling its first layer
        model, classes = to_keras(model)
        example = np.asarray(example, dtype=np.float32)
    return model, example, classes, {"algorithm": "tpe-search", "metric": result.metric, "direction": result.direction,
                                   "best": result.best_config, "bestScore": result.best_score,
                                   "trials": result.history, "errors": result.errors[:20]}


def _snapshot(study: Path, copy: Path) -> Path:
    """A consistent copy of the study (SQLite's backup API: workers may be writing it right now)."""
    import sqlite3

    copy.unlink(missing_ok=True)
    source, target = sqlite3.connect(study), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return copy


def _maximized(metric: str) -> bool:
    from podium.metrics.registry import METRICS

    return METRICS[metric].direction == "maximize"
