"""Search spaces over a fixed vocabulary of scikit-learn estimators, as a training spec gives them.

A space is ``{"estimators": {name: {param: distribution | fixed value}}}``; a distribution is
``{"type": "float"|"int", "low", "high", "log"}`` or ``{"type": "categorical", "choices": [...]}``.
The vocabulary is fixed (no import paths from the spec: a training Job runs only Podium's own code), and
every parameter name is checked against the estimator's ``get_params()``, so a typo is an error that names it.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, model_validator

from podium.api.common import ApiModel
from podium.errors import InvalidConfig, PodiumError

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | None

MAX_ESTIMATORS = 16
MAX_PARAMS = 32
MAX_CHOICES = 64
MAX_INT = 10**9  # int bounds beyond this are a typo, not a search range

FORMAT_HINT = (
    'give each parameter {"type": "float"|"int", "low": L, "high": H, "log": false}, '
    '{"type": "categorical", "choices": [...]} or a fixed value'
)

# name -> (classifier, regressor, needs feature scaling); None where the task has no such estimator
VOCABULARY: dict[str, tuple[str | None, str | None, bool]] = {
    "logistic_regression": ("sklearn.linear_model:LogisticRegression", None, True),
    "ridge": ("sklearn.linear_model:RidgeClassifier", "sklearn.linear_model:Ridge", True),
    "lasso": (None, "sklearn.linear_model:Lasso", True),
    "elastic_net": (None, "sklearn.linear_model:ElasticNet", True),
    "random_forest": ("sklearn.ensemble:RandomForestClassifier", "sklearn.ensemble:RandomForestRegressor", False),
    "extra_trees": ("sklearn.ensemble:ExtraTreesClassifier", "sklearn.ensemble:ExtraTreesRegressor", False),
    "gradient_boosting": (
        "sklearn.ensemble:GradientBoostingClassifier", "sklearn.ensemble:GradientBoostingRegressor", False,
    ),
    "hist_gradient_boosting": (
        "sklearn.ensemble:HistGradientBoostingClassifier", "sklearn.ensemble:HistGradientBoostingRegressor", False,
    ),
    "decision_tree": ("sklearn.tree:DecisionTreeClassifier", "sklearn.tree:DecisionTreeRegressor", False),
    "knn": ("sklearn.neighbors:KNeighborsClassifier", "sklearn.neighbors:KNeighborsRegressor", True),
    "svc": ("sklearn.svm:SVC", None, True),
    "svr": (None, "sklearn.svm:SVR", True),
    "gaussian_nb": ("sklearn.naive_bayes:GaussianNB", None, False),
    "mlp": ("sklearn.neural_network:MLPClassifier", "sklearn.neural_network:MLPRegressor", True),
    # Keras: hidden_units, layers, dropout, learning_rate, epochs, batch_size (saved as a plain Keras model)
    "keras_mlp": ("podium.automl.keras_mlp:KerasMLPClassifier", "podium.automl.keras_mlp:KerasMLPRegressor", True),
}


def estimator_class(name: str, task: Task) -> type:
    """The scikit-learn class behind vocabulary ``name`` for ``task``."""
    if name not in VOCABULARY:
        raise InvalidConfig(f"unknown estimator {name!r}", field=f"space.estimators.{name}",
                            hint=f"use one of {', '.join(sorted(VOCABULARY))}")
    classifier, regressor, _ = VOCABULARY[name]
    path = classifier if task == "classification" else regressor
    if path is None:
        raise InvalidConfig(f"{name} is not available for {task}", field=f"space.estimators.{name}",
                            hint=f"use one of {', '.join(estimator_names(task))}")
    module, attr = path.split(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


def estimator_names(task: Task) -> list[str]:
    return sorted(name for name, paths in VOCABULARY.items() if paths[TASKS.index(task)] is not None)


def known_params(name: str, task: Task) -> list[str]:
    return sorted(_param_names(estimator_class(name, task)))


class FloatDistribution(ApiModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> FloatDistribution:
        _check_bounds(self.low, self.high, self.log)
        return self


class IntDistribution(ApiModel):
    type: Literal["int"]
    low: StrictInt = Field(ge=-MAX_INT, le=MAX_INT)
    high: StrictInt = Field(ge=-MAX_INT, le=MAX_INT)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntDistribution:
        _check_bounds(self.low, self.high, self.log)
        return self


class CategoricalDistribution(ApiModel):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1, max_length=MAX_CHOICES)

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalDistribution:
        keys = [repr(choice) for choice in self.choices]
        if len(set(keys)) != len(keys):
            raise ValueError("choices repeat a value; list each choice once")
        for choice in self.choices:
            _check_scalar(choice)
        return self


def _check_bounds(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite numbers")
    if not low < high:
        raise ValueError(f"low ({low}) must be below high ({high}); for one value give it as a fixed value")
    if log and low <= 0:
        raise ValueError(f"log needs low > 0 (got {low}); raise low or set log to false")


def _check_scalar(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")


Distribution = Annotated[FloatDistribution | IntDistribution | CategoricalDistribution, Field(discriminator="type")]
Param = Distribution | Scalar


class SearchSpace(ApiModel):
    """Estimators (from :data:`VOCABULARY`) and, for each, its parameters' distributions or fixed values."""

    estimators: dict[str, dict[str, Param]] = Field(min_length=1, max_length=MAX_ESTIMATORS)

    @model_validator(mode="after")
    def _known(self) -> SearchSpace:
        for name, params in self.estimators.items():
            if name not in VOCABULARY:
                raise InvalidConfig(f"unknown estimator {name!r}", field=f"space.estimators.{name}",
                                    hint=f"use one of {', '.join(sorted(VOCABULARY))}")
            if len(params) > MAX_PARAMS:
                raise InvalidConfig(f"{len(params)} parameters, at most {MAX_PARAMS}",
                                    field=f"space.estimators.{name}", hint="search fewer parameters")
            for param, value in params.items():
                if not isinstance(value, ApiModel):
                    try:
                        _check_scalar(value)
                    except ValueError as error:
                        raise InvalidConfig(str(error), field=f"space.estimators.{name}.{param}",
                                            hint="give a finite number") from None
            tasks = [task for task in TASKS if VOCABULARY[name][TASKS.index(task)] is not None]
            _check_params(name, params, tasks)
        return self

    @classmethod
    def parse(cls, data: Any) -> SearchSpace:
        """Validate a spec's search space; bad input raises :class:`InvalidConfig` naming the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise _as_podium_error(error) from None

    @classmethod
    def fixed(cls, config: Mapping[str, Any]) -> SearchSpace:
        """A one-point space: ``{"estimator": name, "params": {...}}`` (a recommendation) as fixed values."""
        if not isinstance(config, Mapping) or not isinstance(config.get("estimator"), str):
            raise InvalidConfig("a configuration needs an estimator name", field="config.estimator",
                                hint='give {"estimator": "random_forest", "params": {...}}')
        params = config.get("params", {})
        if not isinstance(params, Mapping):
            raise InvalidConfig("params must be a mapping of parameter to value", field="config.params",
                                hint='give {"n_estimators": 100, ...}')
        extra = sorted(set(config) - {"estimator", "params"})
        if extra:
            raise InvalidConfig(f"unknown keys {extra}", field="config", hint="give only estimator and params")
        for param, value in params.items():
            if isinstance(value, Mapping | list):
                raise InvalidConfig("a configuration holds fixed values only", field=f"config.params.{param}",
                                    hint="give a number, string, boolean or null")
        return cls.parse({"estimators": {config["estimator"]: dict(params)}})

    def check_task(self, task: Task) -> SearchSpace:
        """Every estimator exists for ``task`` and takes the parameters given (raises InvalidConfig)."""
        if task not in TASKS:
            raise InvalidConfig(f"unknown task {task!r}", field="task", hint="use classification or regression")
        for name, params in self.estimators.items():
            _check_params(name, params, [task])
        return self


@functools.cache
def _param_names(cls: type) -> frozenset[str]:
    return frozenset(cls().get_params(deep=False))


def _check_params(name: str, params: Mapping[str, Any], tasks: list[Task]) -> None:
    classes = [estimator_class(name, task) for task in tasks]
    known = sorted(set().union(*(_param_names(cls) for cls in classes)))
    for param in params:
        if param not in known:
            owner = "/".join(cls.__name__ for cls in classes)
            raise InvalidConfig(f"not a parameter of {owner}; known: {', '.join(known)}",
                                field=f"space.estimators.{name}.{param}", hint="correct the parameter name")


def _as_podium_error(error: ValidationError) -> PodiumError:
    errors = error.errors()
    # a dict value fails every scalar branch of the union too: report the distribution's own complaint
    first = next((e for e in errors if e["type"] == "value_error"), None) or next(
        (e for e in errors if any("tagged-union" in str(part) for part in e["loc"])), errors[0])
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, PodiumError):
        return cause
    # keep the spec's path: drop pydantic's union-branch names ("tagged-union[...]", "float", "str", ...)
    loc = [str(part) for part in first["loc"][:3]]
    loc += [str(part) for part in first["loc"][3:] if str(part) in _FIELD_NAMES or isinstance(part, int)]
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidConfig(message, field=".".join(["space", *loc]), hint=FORMAT_HINT)


_FIELD_NAMES = {"type", "low", "high", "log", "choices"}


def build_estimator(name: str, params: Mapping[str, Any], task: Task, *, seed: int | None = None) -> Any:
    """An unfitted estimator (in a scaling pipeline where the model needs it), ``params`` applied."""
    _check_params(name, params, [task])
    cls = estimator_class(name, task)
    settings = dict(params)
    if seed is not None and "random_state" in _param_names(cls):
        settings.setdefault("random_state", seed)
    if cls.__name__ in ("LogisticRegression", "MLPClassifier", "MLPRegressor"):
        settings.setdefault("max_iter", 1000)  # the defaults stop early on unscaled-looking data
    model = cls(**settings)
    if not VOCABULARY[name][2]:
        return model
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _log_float(low: float, high: float) -> dict[str, Any]:
    return {"type": "float", "low": low, "high": high, "log": True}


def _log_int(low: int, high: int) -> dict[str, Any]:
    return {"type": "int", "low": low, "high": high, "log": True}


def default_space(task: Task) -> SearchSpace:
    """A moderate space (linear, kNN, SVM, forests, boosting) that searches well in tens of trials."""
    forest = {"n_estimators": _log_int(20, 300), "max_depth": _log_int(2, 32),
              "min_samples_leaf": _log_int(1, 16), "max_features": {"type": "categorical",
                                                                   "choices": ["sqrt", "log2", 1.0]}}
    boosting = {"learning_rate": _log_float(0.01, 0.5), "max_leaf_nodes": _log_int(4, 64),
                "l2_regularization": _log_float(1e-6, 10.0)}
    knn = {"n_neighbors": _log_int(1, 50), "weights": {"type": "categorical", "choices": ["uniform", "distance"]}}
    if task == "classification":
        estimators: dict[str, Any] = {
            "logistic_regression": {"C": _log_float(1e-3, 1e3)},
            "knn": knn,
            "svc": {"C": _log_float(1e-2, 1e3), "gamma": _log_float(1e-4, 1.0)},
            "random_forest": forest, "extra_trees": forest, "hist_gradient_boosting": boosting,
        }
    elif task == "regression":
        estimators = {
            "ridge": {"alpha": _log_float(1e-3, 1e3)},
            "knn": knn,
            "svr": {"C": _log_float(1e-2, 1e3), "gamma": _log_float(1e-4, 1.0), "epsilon": _log_float(1e-3, 1.0)},
            "random_forest": forest, "extra_trees": forest, "hist_gradient_boosting": boosting,
        }
    else:
        raise InvalidConfig(f"unknown task {task!r}", field="task", hint="use classification or regression")
    return SearchSpace.parse({"estimators": estimators})
