"""Recommendations from the most similar known tasks (pure: meta-features in, configurations out)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.automl.recommend import KnownTask, Recommendation, recommend
from podium.errors import InvalidConfig

KEYS = ("a", "b", "c")


def _config(i: int) -> dict:
    return {"estimator": "knn", "params": {"n_neighbors": i}}


@st.composite
def known_tasks(draw):
    n = draw(st.integers(2, 8))
    vectors = draw(st.lists(st.tuples(*[st.integers(-50, 50) for _ in KEYS]), min_size=n, max_size=n, unique=True))
    tasks = []
    for i, vector in enumerate(vectors):
        scores = draw(st.lists(st.integers(0, 100), min_size=1, max_size=4, unique=True))
        configs = draw(st.permutations(range(10)))[: len(scores)]
        tasks.append(KnownTask(f"t{i}", {k: float(v) for k, v in zip(KEYS, vector, strict=True)},
                               [(_config(c), float(s)) for c, s in zip(configs, scores, strict=True)]))
    return tasks


@settings(max_examples=60, deadline=None)
@given(known_tasks(), st.data())
def test_a_known_task_gets_its_own_best_configuration(known, data):
    task = data.draw(st.sampled_from(known))
    best = max(task.results, key=lambda r: r[1])
    (first, *_) = recommend(task.metafeatures, known, k=1)
    assert first == Recommendation(config=best[0], source=task.name, distance=0.0, score=best[1])


@settings(max_examples=60, deadline=None)
@given(known_tasks(), st.data(), st.integers(1, 12))
def test_order_of_known_tasks_does_not_matter_and_k_bounds_the_answer(known, data, k):
    target = {key: data.draw(st.floats(-60, 60)) for key in KEYS}
    shuffled = data.draw(st.permutations(known))
    first = recommend(target, known, k=k)
    assert first == recommend(target, shuffled, k=k)
    distinct = {repr(sorted(r[0]["params"].items())) for t in known for r in t.results}
    assert len(first) == min(k, len(distinct))
    assert len({repr(r.config) for r in first}) == len(first)  # de-duplicated


def test_nearest_tasks_come_first_and_scale_is_normalised():
    known = [
        KnownTask("near", {"rows": 1000.0, "ratio": 0.5}, [(_config(1), 0.9)]),
        KnownTask("far", {"rows": 1010.0, "ratio": 0.9}, [(_config(2), 0.99)]),
        KnownTask("other", {"rows": 5000.0, "ratio": 0.1}, [(_config(3), 0.8)]),
    ]
    # "rows" differs by 10 of a spread of thousands, "ratio" by 0.4 of a spread of 0.8: far is far
    recs = recommend({"rows": 1010.0, "ratio": 0.5}, known, k=2)
    assert [r.source for r in recs] == ["near", "far"] and recs[0].distance < recs[1].distance


def test_only_shared_meta_features_count():
    known = [KnownTask("x", {"a": 0.0, "only_here": 9.0}, [(_config(1), 1.0)]),
             KnownTask("y", {"a": 5.0}, [(_config(2), 1.0)])]
    assert recommend({"a": 0.0, "extra": 3.0}, known, k=1)[0].source == "x"


@pytest.mark.parametrize(("args", "field"), [
    (({"a": 1.0}, [], 3), "known"),
    (({"a": float("nan")}, [KnownTask("x", {"a": 1.0}, [(_config(1), 1.0)])], 3), "target.a"),
    (({"a": 1.0}, [KnownTask("x", {"a": 1.0}, [(_config(1), 1.0)])], 0), "k"),
    (({"b": 1.0}, [KnownTask("x", {"a": 1.0}, [(_config(1), 1.0)])], 1), "target"),
    (({"a": 1.0}, [KnownTask("x", {"a": 1.0}, []), KnownTask("x", {"a": 2.0}, [])], 1), "known"),
])
def test_bad_input_names_the_field(args, field):
    with pytest.raises(InvalidConfig, match=rf"^{field}:"):
        recommend(*args)


# --- meta-features (the vectors recommendations compare) ---------------------------------------------

@pytest.mark.parametrize("task", ["classification", "regression"])
def test_meta_features_have_one_sorted_finite_key_set_per_task(task):
    import math

    import numpy as np
    from sklearn.datasets import load_iris, load_wine, make_friedman1, make_regression

    from podium.automl import metafeatures

    if task == "classification":
        sets = [load_iris(return_X_y=True), load_wine(return_X_y=True)]
    else:
        sets = [make_regression(n_samples=80, n_features=3, random_state=0), make_friedman1(n_samples=700, random_state=0)]
    x, y = sets[0]
    x = np.column_stack([x, np.ones(len(x))])  # a constant column: its correlations are undefined
    vectors = [metafeatures.compute(x, y, task), metafeatures.compute(*sets[1], task)]
    assert list(vectors[0]) == list(vectors[1]) == sorted(vectors[0]) == list(metafeatures.keys(task))
    assert all(math.isfinite(v) for vector in vectors for v in vector.values())
    assert vectors[0] == metafeatures.compute(x, y, task)  # deterministic, subsampling included
    assert vectors[0] != vectors[1]
    assert {"podium.log_rows", "podium.log_features"} <= set(vectors[0])
    landmarks = {"landmark.one_nn", "landmark.naive_bayes"} if task == "classification" else {"landmark.linear_r2"}
    assert landmarks <= set(vectors[0])


def test_meta_features_refuse_bad_data_by_field():
    import numpy as np

    from podium.automl import metafeatures

    with pytest.raises(InvalidConfig, match=r"^X:"):
        metafeatures.compute(np.full((10, 2), np.inf), np.arange(10) % 2, "classification")
    with pytest.raises(InvalidConfig, match=r"^y:"):
        metafeatures.compute(np.zeros((10, 2)), np.arange(9), "classification")
    with pytest.raises(InvalidConfig, match=r"^task:"):
        metafeatures.compute(np.zeros((10, 2)), np.arange(10), "ranking")


def test_configurations_that_did_well_on_several_near_tasks_beat_one_lucky_best():
    steady, lucky, poor = _config(1), _config(2), _config(3)
    known = [
        KnownTask("t1", {"a": 1.0}, [(lucky, 0.91), (steady, 0.90), (poor, 0.5)]),
        KnownTask("t2", {"a": 2.0}, [(lucky, 0.60), (steady, 0.95), (poor, 0.5)]),
        KnownTask("t3", {"a": 3.0}, [(lucky, 0.60), (steady, 0.93), (poor, 0.5)]),
        KnownTask("t9", {"a": 90.0}, [(_config(9), 1.0)]),
    ]
    recs = recommend({"a": 0.9}, known, k=3)
    assert [r.config for r in recs] == [steady, lucky, poor] and recs[0].source == "t1"
    assert [r.config for r in recommend({"a": 0.9}, known, k=4, neighbours=1)] == [lucky, steady, poor, _config(9)]
