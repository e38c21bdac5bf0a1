"""Optuna search over a space: scores by the playground metric, history, refit, shared RDB studies."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression

from podium.automl.hpo import run_search, scorer_for
from podium.automl.space import SearchSpace
from podium.errors import InvalidConfig

SPACE = SearchSpace.parse({"estimators": {
    "knn": {"n_neighbors": {"type": "int", "low": 1, "high": 15}},
    "logistic_regression": {"C": {"type": "float", "low": 1e-3, "high": 1e2, "log": True}},
}})


def _iris():
    return load_iris(return_X_y=True)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_search_reports_each_trial_and_refits_the_best(sampler):
    x, y = _iris()
    seen: list[dict] = []
    result = run_search(x, y, task="classification", space=SPACE, trials=6, sampler=sampler, seed=0,
                        metric="accuracy", on_trial=seen.append)
    assert [t["number"] for t in seen] == list(range(6)) == [t["number"] for t in result.history]
    assert {"number", "params", "value", "state", "duration", "config"} <= set(result.history[0])
    complete = [t["value"] for t in result.history if t["state"] == "COMPLETE"]
    assert result.best_score == max(complete) and 0.8 < result.best_score <= 1.0
    assert result.best_config["estimator"] in SPACE.estimators
    assert result.model.predict(x[:5]).shape == (5,)  # refitted on all data
    again = run_search(x, y, task="classification", space=SPACE, trials=6, sampler=sampler, seed=0,
                       metric="accuracy")
    assert [t["params"] for t in again.history] == [t["params"] for t in result.history]  # seeded


def test_minimised_metrics_keep_their_own_units_and_direction():
    x, y = make_regression(n_samples=120, n_features=4, noise=5.0, random_state=0)
    space = SearchSpace.parse({"estimators": {"ridge": {"alpha": {"type": "float", "low": 1e-3, "high": 1e3,
                                                                   "log": True}}}})
    result = run_search(x, y, task="regression", space=space, trials=5, sampler="random", seed=1, metric="rmse")
    values = [t["value"] for t in result.history]
    assert all(v > 0 for v in values) and result.best_score == min(values) and result.direction == "minimize"


def test_fixed_space_runs_one_configuration():
    x, y = _iris()
    space = SearchSpace.fixed({"estimator": "knn", "params": {"n_neighbors": 3}})
    result = run_search(x, y, task="classification", space=space, trials=1, sampler="tpe", seed=0,
                        metric="f1_macro")
    assert result.best_config == {"estimator": "knn", "params": {"n_neighbors": 3}}


def test_a_failing_configuration_is_a_failed_trial_not_a_failed_search():
    x, y = _iris()  # three classes: ridge has no predict_proba, so log_loss cannot score it
    space = SearchSpace.parse({"estimators": {"ridge": {"alpha": 1.0}, "knn": {"n_neighbors": 5}}})
    seen: list[dict] = []
    result = run_search(x, y, task="classification", space=space, trials=6, sampler="random", seed=0,
                        metric="log_loss", on_trial=seen.append)
    assert len(seen) == 6 and result.errors  # failed trials are reported too, with why they failed
    states = {t["config"]["estimator"]: t["state"] for t in result.history}
    assert states.get("ridge", "FAIL") == "FAIL" and states["knn"] == "COMPLETE"
    assert result.best_config["estimator"] == "knn"
    only_ridge = SearchSpace.parse({"estimators": {"ridge": {"alpha": 1.0}}})
    with pytest.raises(InvalidConfig, match=r"^space: no trial completed; first error: .*Fix: .*log_loss"):
        run_search(x, y, task="classification", space=only_ridge, trials=2, sampler="tpe", seed=0, metric="log_loss")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"metric": "rmse"}, "metric"), ({"metric": "nope"}, "metric"), ({"trials": 0}, "trials"),
    ({"sampler": "grid"}, "sampler"), ({"cv": 1}, "cv"), ({"task": "ranking"}, "task"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    x, y = _iris()
    args = {"task": "classification", "space": SPACE, "trials": 2, "sampler": "tpe", "seed": 0,
            "metric": "accuracy", **kwargs}
    with pytest.raises(InvalidConfig, match=rf"^{field}:"):
        run_search(x, y, **args)


def test_bad_data_is_refused():
    x, y = _iris()
    with pytest.raises(InvalidConfig, match=r"^y:"):
        run_search(x, y[:10], task="classification", space=SPACE, trials=1, sampler="tpe", seed=0,
                   metric="accuracy")
    x = x.copy()
    x[0, 0] = np.nan
    with pytest.raises(InvalidConfig, match=r"^X:"):
        run_search(x, y, task="classification", space=SPACE, trials=1, sampler="tpe", seed=0, metric="accuracy")


def test_string_labels_and_probability_metrics():
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    for metric in ("roc_auc", "log_loss", "balanced_accuracy"):
        result = run_search(x, names, task="classification", space=SPACE, trials=2, sampler="tpe", seed=0,
                            metric=metric)
        assert result.model.predict(x[:2]).dtype.kind in "US"


def test_metric_names_map_to_scorers_with_direction():
    assert scorer_for("log_loss", "classification", n_classes=3) == ("neg_log_loss", -1.0)
    assert scorer_for("roc_auc", "classification", n_classes=3)[0] == "roc_auc_ovr"
    assert scorer_for("roc_auc", "classification", n_classes=2)[0] == "roc_auc"
    assert scorer_for("r2", "regression") == ("r2", 1.0)


_WORKER = """
import sys
from sklearn.datasets import load_iris
from podium.automl.hpo import run_search
from podium.automl.space import SearchSpace
space = SearchSpace.parse({"estimators": {"knn": {"n_neighbors": {"type": "int", "low": 1, "high": 15}}}})
x, y = load_iris(return_X_y=True)
r = run_search(x, y, task="classification", space=space, trials=3, sampler="tpe", seed=int(sys.argv[2]),
               metric="accuracy", storage=sys.argv[1], study_name="shared")
print(len(r.history))
"""


def test_processes_sharing_an_rdb_storage_add_to_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    done = subprocess.run([sys.executable, "-c", _WORKER, storage, "0"], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.split()[-1] == "3"
    x, y = _iris()
    space = SearchSpace.parse({"estimators": {"knn": {"n_neighbors": {"type": "int", "low": 1, "high": 15}}}})
    seen: list[dict] = []
    result = run_search(x, y, task="classification", space=space, trials=2, sampler="tpe", seed=1,
                        metric="accuracy", storage=storage, study_name="shared", on_trial=seen.append)
    assert [t["number"] for t in result.history] == list(range(5))  # found the other process's 3 trials
    assert [t["number"] for t in seen] == [3, 4]
    assert result.best_score == max(t["value"] for t in result.history)
    with pytest.raises(InvalidConfig, match=r"^metric:"):  # the study's direction is part of its identity
        run_search(x, y, task="classification", space=space, trials=1, sampler="tpe", seed=1, metric="log_loss",
                   storage=storage, study_name="shared")


def test_parallel_workers_share_one_study_and_the_best_of_all_is_refitted(tmp_path):
    import optuna

    x, y = _iris()
    storage = f"sqlite:///{tmp_path / 'parallel.db'}"
    seen: list[dict] = []
    result = run_search(x, y, task="classification", space=SPACE, trials=6, sampler="tpe", seed=3,
                        metric="accuracy", storage=storage, study_name="p", on_trial=seen.append, workers=2)
    assert len(result.history) == 6 and len(seen) == 3  # this process ran its share; the worker the rest
    stored = optuna.load_study(study_name="p", storage=storage).get_trials()
    assert sorted(t.number for t in stored) == list(range(6))
    assert result.best_score == max(t["value"] for t in result.history if t["value"] is not None)
    assert not result.errors


@pytest.mark.parametrize(("kwargs", "field"), [({"workers": 2}, "storage"), ({"workers": 9}, "workers")])
def test_parallel_workers_need_a_shared_storage_and_a_trial_each(kwargs, field):
    x, y = _iris()
    with pytest.raises(InvalidConfig, match=rf"^{field}:"):
        run_search(x, y, task="classification", space=SPACE, trials=4, sampler="tpe", seed=0, metric="accuracy",
                   **({"storage": "sqlite://"} if field == "workers" else {}), **kwargs)
