"""Hyperparameter search over a :class:`~podium.automl.space.SearchSpace` with Optuna (TPE, or random).

Each trial draws an estimator from the space, then its parameters, and scores it by cross-validation
with the playground's metric in that metric's own units (an RMSE stays positive; the study's direction
follows the metric). With ``storage`` (an RDB URL such as ``sqlite:///study.db``) several processes add
trials to one named study; the best configuration of the whole study is refitted on all the data.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from podium.automl.inputs import checked_table
from podium.automl.space import (
    TASKS,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    SearchSpace,
    Task,
    build_estimator,
)
from podium.errors import InvalidConfig
from podium.metrics.registry import METRICS

Sampler = Literal["tpe", "random"]
MAX_TRIALS = 10_000
MAX_CV = 20

# podium metric -> (scikit-learn scorer, sign turning the scorer's value into the metric's own units)
_SCORERS: dict[str, tuple[str, float]] = {
    "accuracy": ("accuracy", 1.0), "balanced_accuracy": ("balanced_accuracy", 1.0),
    "precision_macro": ("precision_macro", 1.0), "recall_macro": ("recall_macro", 1.0),
    "f1_macro": ("f1_macro", 1.0), "precision_weighted": ("precision_weighted", 1.0),
    "recall_weighted": ("recall_weighted", 1.0), "f1_weighted": ("f1_weighted", 1.0),
    "roc_auc": ("roc_auc_ovr", 1.0), "log_loss": ("neg_log_loss", -1.0),
    "mse": ("neg_mean_squared_error", -1.0), "rmse": ("neg_root_mean_squared_error", -1.0),
    "mae": ("neg_mean_absolute_error", -1.0), "r2": ("r2", 1.0),
    "mape": ("neg_mean_absolute_percentage_error", -1.0),
}


@dataclass
class SearchResult:
    best_config: dict[str, Any]  # {"estimator": name, "params": {...}}
    best_score: float  # in the metric's own units
    history: list[dict[str, Any]]  # every trial of the study: number, params, config, value, state, duration
    model: Any  # the best configuration refitted on all the data
    metric: str
    direction: str
    study_name: str
    errors: list[str] = field(default_factory=list)  # why failed trials failed (first line each)


class _TrialFailed(Exception):
    """A configuration that cannot be fitted or scored: a failed trial, not a failed search."""


def scorer_for(metric: str, task: Task, n_classes: int = 2) -> tuple[str, float]:
    """The scikit-learn scorer for a podium metric name and the sign to its own units."""
    info = METRICS.get(metric)
    if info is None or metric not in _SCORERS:
        raise InvalidConfig(f"unknown metric {metric!r}", field="metric",
                            hint=f"use one of {', '.join(sorted(_SCORERS))}")
    if info.task != task:
        raise InvalidConfig(f"{metric} is a {info.task} metric, the task is {task}", field="metric",
                            hint=f"use one of {', '.join(m for m in _SCORERS if METRICS[m].task == task)}")
    if metric == "roc_auc" and n_classes == 2:
        return "roc_auc", 1.0
    return _SCORERS[metric]


def _check_data(x: Any, y: Any, task: Task, cv: int) -> tuple[np.ndarray, np.ndarray]:
    features, labels = checked_table(x, y, task, min_rows=2 * cv)
    if task == "classification" and len(np.unique(labels)) < 2:
        raise InvalidConfig("one class only", field="y", hint="give at least two classes")
    return features, labels


def _check_args(task: str, trials: int, sampler: str, cv: int) -> None:
    if task not in TASKS:
        raise InvalidConfig(f"unknown task {task!r}", field="task", hint="use classification or regression")
    if not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise InvalidConfig(f"trials is {trials!r}", field="trials", hint=f"give 1 to {MAX_TRIALS}")
    if sampler not in ("tpe", "random"):
        raise InvalidConfig(f"unknown sampler {sampler!r}", field="sampler", hint="use tpe or random")
    if not isinstance(cv, int) or not 2 <= cv <= MAX_CV:
        raise InvalidConfig(f"cv is {cv!r}", field="cv", hint=f"give 2 to {MAX_CV} folds")


def _suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Draw one configuration: the estimator, then its parameters (named ``estimator.param`` in Optuna)."""
    name = trial.suggest_categorical("estimator", sorted(space.estimators))
    params: dict[str, Any] = {}
    for param, value in space.estimators[name].items():
        key = f"{name}.{param}"
        if isinstance(value, FloatDistribution):
            params[param] = trial.suggest_float(key, value.low, value.high, log=value.log)
        elif isinstance(value, IntDistribution):
            params[param] = trial.suggest_int(key, value.low, value.high, log=value.log)
        elif isinstance(value, CategoricalDistribution):
            params[param] = trial.suggest_categorical(key, value.choices)
        else:
            params[param] = value
    return {"estimator": name, "params": params}


def _record(trial: Any) -> dict[str, Any]:
    value = trial.value if trial.values else None
    return {
        "number": trial.number,
        "params": dict(trial.params),
        "config": trial.user_attrs.get("config"),
        "value": value if value is None or math.isfinite(value) else None,
        "state": trial.state.name,
        "duration": trial.duration.total_seconds() if trial.duration is not None else None,
    }


def _claim(study: Any, metric: str, task: str, name: str) -> None:
    """A shared study holds one metric's values: a second run with another metric (or task) would mix
    them, and Optuna's load_if_exists keeps the stored direction without a word."""
    for key, wanted in (("metric", metric), ("task", task)):
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, wanted)
        elif stored != wanted:
            raise InvalidConfig(f"study {name!r} holds {stored} trials, this search is {wanted}", field=key,
                                hint=f"use {key} {stored}, or another study_name")


def _objective(space: SearchSpace, task: Task, features: np.ndarray, labels: np.ndarray, metric: str, cv: int,
               seed: int) -> Callable[[Any], float]:
    """One trial: draw a configuration from ``space``, score it by cross-validation in the metric's units."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    n_classes = len(np.unique(labels)) if task == "classification" else 0
    scorer, sign = scorer_for(metric, task, n_classes)
    splitter = (StratifiedKFold(cv, shuffle=True, random_state=seed) if task == "classification"
                else KFold(cv, shuffle=True, random_state=seed))

    def objective(trial: Any) -> float:
        config = _suggest(trial, space)
        trial.set_user_attr("config", config)
        model = build_estimator(config["estimator"], config["params"], task, seed=seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = cross_val_score(model, features, labels, scoring=scorer, cv=splitter, error_score="raise")
        except (ValueError, TypeError, AttributeError, ArithmeticError, np.linalg.LinAlgError) as error:
            trial.set_user_attr("error", str(error).splitlines()[0][:300] if str(error) else type(error).__name__)
            raise _TrialFailed(str(error)) from None
        value = sign * float(np.mean(scores))
        if not math.isfinite(value):
            trial.set_user_attr("error", f"{metric} is not finite")
            raise _TrialFailed(f"{metric} is not finite")
        return value

    return objective


def _study(storage: str | None, name: str, direction: str, sampler: Sampler, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.create_study(storage=storage, study_name=name, direction=direction,  # type: ignore[arg-type]
                                       sampler=samplers[sampler](), load_if_exists=True)
        except ValueError as error:  # an existing study of the other direction, or a bad URL
            raise InvalidConfig(str(error).splitlines()[0], field="storage",
                                hint="use a new study_name, or an sqlite:///path or other SQLAlchemy URL") from None


def _worker(storage: str, name: str, direction: str, sampler: Sampler, seed: int, trials: int,
            objective_args: tuple[Any, ...], timeout: float | None) -> None:
    """Another process's share of the trials, in the same study (the RDB storage is what they share)."""
    study = _study(storage, name, direction, sampler, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(_objective(*objective_args), n_trials=trials, timeout=timeout, catch=(_TrialFailed,))


def _shares(trials: int, workers: int) -> list[int]:
    return [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]


def run_search(
    X: Any,  # noqa: N803 (scikit-learn's name)
    y: Any,
    *,
    task: Task,
    space: SearchSpace,
    trials: int,
    sampler: Sampler,
    seed: int,
    metric: str,
    cv: int = 3,
    storage: str | None = None,
    study_name: str | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    timeout: float | None = None,
    workers: int = 1,
) -> SearchResult:
    """Run ``trials`` more trials of the study and refit its best configuration on all of ``X, y``.

    ``workers`` > 1 runs them in that many processes at once, sharing the study through ``storage`` (an RDB
    URL); each worker samples with its own seed, and ``on_trial`` hears of this process's trials.
    """
    _check_args(task, trials, sampler, cv)
    if not 1 <= workers <= min(trials, 64):
        raise InvalidConfig(f"workers={workers} for {trials} trials", field="workers",
                            hint="give 1 to 64 workers, at most one per trial")
    if workers > 1 and not storage:
        raise InvalidConfig("parallel workers share the study through an RDB storage", field="storage",
                            hint="give storage, e.g. sqlite:///study.db")
    space.check_task(task)
    features, labels = _check_data(X, y, task, cv)
    scorer_for(metric, task, len(np.unique(labels)) if task == "classification" else 0)  # names a bad metric
    direction = METRICS[metric].direction
    import multiprocessing

    import optuna

    name = study_name or "podium-search"
    study = _study(storage, name, direction, sampler, seed)
    _claim(study, metric, task, name)
    objective_args = (space, task, features, labels, metric, cv, seed)
    own, *others = _shares(trials, workers)
    context = multiprocessing.get_context("spawn")  # no forked copies of the caller's threads and locks
    processes = [context.Process(target=_worker, args=(storage, name, direction, sampler, seed + 1 + i, share,
                                                       objective_args, timeout), daemon=True)
                 for i, share in enumerate(others)]
    for process in processes:
        process.start()
    callbacks = [lambda _study, trial: on_trial(_record(trial))] if on_trial else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(_objective(*objective_args), n_trials=own, timeout=timeout, catch=(_TrialFailed,),
                       callbacks=callbacks)
    for process in processes:
        process.join()
    finished = study.get_trials(deepcopy=False)
    history = [_record(trial) for trial in finished]
    errors = [trial.user_attrs["error"] for trial in finished if "error" in trial.user_attrs]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise InvalidConfig(f"no trial completed; first error: {errors[0] if errors else 'none recorded'}",
                            field="space", hint=f"give configurations that can be scored with {metric}")
    if any(process.exitcode != 0 for process in processes):
        errors.append(f"{sum(p.exitcode != 0 for p in processes)} of {len(processes)} workers failed")
    best = study.best_trial
    config = best.user_attrs["config"]
    model = build_estimator(config["estimator"], config["params"], task, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(features, labels)
    assert best.value is not None
    return SearchResult(best_config=config, best_score=float(best.value), history=history, model=model,
                        metric=metric, direction=direction, study_name=name, errors=errors)
