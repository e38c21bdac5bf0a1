"""Search spaces: the spec's format, its bounds, and errors that name the field at fault."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.automl.space import (
    MAX_ESTIMATORS,
    VOCABULARY,
    SearchSpace,
    build_estimator,
    default_space,
    estimator_names,
)
from podium.errors import InvalidConfig


def _error(data) -> str:
    with pytest.raises(InvalidConfig) as caught:
        SearchSpace.parse(data)
    return str(caught.value)


def test_a_space_reads_every_kind_of_distribution_and_fixed_values():
    space = SearchSpace.parse({"estimators": {"random_forest": {
        "n_estimators": {"type": "int", "low": 10, "high": 200, "log": True},
        "max_features": {"type": "categorical", "choices": ["sqrt", 1.0, None]},
        "min_impurity_decrease": {"type": "float", "low": 0.0, "high": 0.1},
        "bootstrap": True,
    }}})
    params = space.estimators["random_forest"]
    assert params["n_estimators"].log and params["max_features"].choices == ["sqrt", 1.0, None]
    assert params["bootstrap"] is True
    assert SearchSpace.parse(space.to_wire()) == space  # wire form round-trips


def test_a_misspelt_parameter_is_named_with_the_known_ones():
    message = _error({"estimators": {"random_forest": {"n_estimatorz": 10}}})
    assert message.startswith("space.estimators.random_forest.n_estimatorz: not a parameter of RandomForestClassifier")
    assert "n_estimators" in message and "Fix:" in message


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"C": {"type": "float", "low": 1.0, "high": 1.0}}, "space.estimators.svc.C", "must be below high"),
    ({"C": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "space.estimators.svc.C", "log needs low > 0"),
    ({"C": {"type": "float", "low": 0.0, "high": float("inf")}}, "space.estimators.svc.C", "finite"),
    ({"C": float("nan")}, "space.estimators.svc.C", "finite"),
    ({"kernel": {"type": "categorical", "choices": []}}, "space.estimators.svc.kernel", "at least 1"),
    ({"kernel": {"type": "categorical", "choices": ["rbf", "rbf"]}}, "space.estimators.svc.kernel", "repeat"),
    ({"C": {"type": "normal", "low": 0.0, "high": 1.0}}, "space.estimators.svc.C", ""),
])
def test_bad_distributions_name_the_parameter(params, field, words):
    message = _error({"estimators": {"svc": params}})
    assert message.split(":")[0] in (field, field + ".choices", field + ".type") and words in message
    assert "Fix:" in message


def test_unknown_estimators_and_limits_are_refused():
    assert _error({"estimators": {"xgboost": {}}}).startswith("space.estimators.xgboost: unknown estimator")
    assert _error({"estimators": {}}).startswith("space.estimators:")
    too_many = {f"e{i}": {} for i in range(MAX_ESTIMATORS + 1)}
    assert _error({"estimators": too_many}).startswith("space.estimators:")
    assert _error({"estimators": {"knn": {}}, "extra": 1}).startswith("space.extra:")


def test_a_space_is_checked_against_the_task_it_runs_for():
    space = SearchSpace.parse({"estimators": {"logistic_regression": {"C": 1.0}}})
    with pytest.raises(InvalidConfig, match=r"^space.estimators.logistic_regression: .*not available for regression"):
        space.check_task("regression")
    assert space.check_task("classification") is space


def test_fixed_turns_a_configuration_into_a_one_point_space():
    space = SearchSpace.fixed({"estimator": "knn", "params": {"n_neighbors": 7}})
    assert space.estimators == {"knn": {"n_neighbors": 7}}
    with pytest.raises(InvalidConfig, match=r"^config.estimator:"):
        SearchSpace.fixed({"params": {}})
    with pytest.raises(InvalidConfig, match=r"^config.params.n_neighbors:"):
        SearchSpace.fixed({"estimator": "knn", "params": {"n_neighbors": {"type": "int", "low": 1, "high": 3}}})


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_default_spaces_build_estimators_that_fit(task):
    import numpy as np

    space = default_space(task)
    assert set(space.estimators) <= set(estimator_names(task))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int) if task == "classification" else x[:, 0]
    for name in space.estimators:
        fixed = {k: v for k, v in space.estimators[name].items() if not hasattr(v, "type")}
        build_estimator(name, fixed, task, seed=0).fit(x, y).predict(x)


def test_every_vocabulary_entry_resolves():
    for name, (cls, reg, _) in VOCABULARY.items():
        for task, path in (("classification", cls), ("regression", reg)):
            if path:
                assert build_estimator(name, {}, task) is not None


_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True, allow_infinity=True) | st.text(
    max_size=5)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["type", "low", "high", "log", "choices", "x"]), inner,
                                         max_size=5), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["knn", "svc", "random_forest", "nope"]),
                       st.dictionaries(st.sampled_from(["C", "n_neighbors", "max_depth", "typo"]), _VALUES,
                                       max_size=3), max_size=3))
def test_any_input_parses_or_fails_with_a_named_field(estimators):
    try:
        space = SearchSpace.parse({"estimators": estimators})
    except InvalidConfig as error:
        assert str(error).startswith("space.") and "Fix:" in str(error)
    else:
        assert SearchSpace.parse(space.to_wire()) == space


def test_keras_models_are_in_the_vocabulary_with_their_parameters_checked():
    from podium.automl.space import SearchSpace, build_estimator
    from podium.errors import InvalidConfig

    space = SearchSpace.parse({"estimators": {"keras_mlp": {"hidden_units": {"type": "int", "low": 8, "high": 64},
                                                            "epochs": 5}}})
    assert space.check_task("regression") is space
    with pytest.raises(InvalidConfig, match=r"^space\.estimators\.keras_mlp\.units: not a parameter of KerasMLP"):
        SearchSpace.parse({"estimators": {"keras_mlp": {"units": 8}}})
    model = build_estimator("keras_mlp", {"epochs": 3}, "classification", seed=1)
    assert [name for name, _ in model.steps] == ["scale", "model"] and model.steps[1][1].random_state == 1
