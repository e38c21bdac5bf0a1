"""Podium's metrics equal scikit-learn's, and bad input fails with errors that say what to fix."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from podium.errors import InvalidConfig, InvalidHoldout, InvalidPredictions, PodiumError
from podium.metrics import METRICS, classification_metrics, compute_metrics, metric_names, regression_metrics
from podium.metrics.auc import binary_auc, ovr_macro_auc
from podium.metrics.scorekeys import score_keys

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@st.composite
def classification_cases(draw: st.DrawFn) -> dict:
    """Random holdouts: string or int labels, imbalance, classes missing from either side, tied scores."""
    k = draw(st.integers(2, 6))
    labels = (
        np.array(sorted(f"class-{i}" for i in range(k)))
        if draw(st.booleans())
        else np.array(sorted(draw(st.lists(st.integers(-50, 50), min_size=k, max_size=k, unique=True))))
    )
    n = draw(st.integers(1, 150))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, draw(st.sampled_from([0.3, 1.0, 5.0]))))
    true = labels[rng.choice(k, size=n, p=weights)]
    predicted_classes = rng.choice(k, size=draw(st.integers(1, k)), replace=False)  # some never predicted
    pred = labels[rng.choice(predicted_classes, size=n)]
    # Small integer weights make equal scores (ties) common; all-zero rows become uniform.
    raw = rng.integers(0, draw(st.sampled_from([2, 4, 1000])), size=(n, k)).astype(float)
    raw[raw.sum(axis=1) == 0] = 1.0
    proba = raw / raw.sum(axis=1, keepdims=True)
    return {"labels": labels, "true": true, "pred": pred, "proba": proba, "rng": rng}


def sklearn_classification(true: np.ndarray, pred: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macro = skm.precision_recall_fscore_support(true, pred, average="macro", zero_division=0)
        weighted = skm.precision_recall_fscore_support(true, pred, average="weighted", zero_division=0)
        expected = {
            "accuracy": skm.accuracy_score(true, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(true, pred),
            "precision_macro": macro[0],
            "recall_macro": macro[1],
            "f1_macro": macro[2],
            "precision_weighted": weighted[0],
            "recall_weighted": weighted[1],
            "f1_weighted": weighted[2],
            "log_loss": skm.log_loss(true, proba, labels=labels),
        }
    present = [j for j, label in enumerate(labels) if (true == label).any()]
    if len(labels) == 2:
        expected["roc_auc"] = (
            skm.roc_auc_score(true == labels[1], proba[:, 1]) if len(present) == 2 else float("nan")
        )
    elif len(present) == len(labels):
        expected["roc_auc"] = skm.roc_auc_score(true, proba, multi_class="ovr", labels=labels)
    elif len(present) >= 2:  # scikit-learn refuses; Podium averages over the classes present
        expected["roc_auc"] = np.mean([skm.roc_auc_score(true == labels[j], proba[:, j]) for j in present])
    else:
        expected["roc_auc"] = float("nan")
    return expected


@SETTINGS
@given(classification_cases())
def test_classification_matches_sklearn(case: dict) -> None:
    labels, rng = case["labels"], case["rng"]
    # The playground's class order and the model's column order are both arbitrary.
    playground = labels[rng.permutation(len(labels))]
    columns = rng.permutation(len(labels))
    ours = classification_metrics(
        case["true"],
        case["pred"],
        labels=playground,
        proba=case["proba"][:, columns],
        proba_classes=labels[columns],
    )
    expected = sklearn_classification(case["true"], case["pred"], case["proba"], labels)
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        assert close(ours[name], float(value)), (name, ours[name], value)


@SETTINGS
@given(st.integers(1, 300), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1.0, 1e6]), st.booleans())
def test_regression_matches_sklearn(n: int, seed: int, offset: float, zeros: bool) -> None:
    rng = np.random.default_rng(seed)
    true = offset + rng.normal(size=n) * rng.choice([1e-3, 1.0, 1e3])
    if zeros:
        true[rng.random(n) < 0.2] = 0.0  # MAPE divides by max(|y|, eps)
    pred = true + rng.normal(size=n)
    ours = regression_metrics(true, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns that R² of one row is undefined
        expected = {
            "mse": skm.mean_squared_error(true, pred),
            "rmse": skm.root_mean_squared_error(true, pred),
            "mae": skm.mean_absolute_error(true, pred),
            "r2": skm.r2_score(true, pred),
            "mape": skm.mean_absolute_percentage_error(true, pred),
        }
    for name, value in expected.items():
        assert close(ours[name], value), (name, ours[name], value)


def test_regression_spanning_many_blocks_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    true = rng.normal(size=25_001)
    pred = true + rng.normal(size=25_001)
    ours = regression_metrics(true, pred)
    assert close(ours["mse"], skm.mean_squared_error(true, pred))
    assert close(ours["r2"], skm.r2_score(true, pred))
    assert close(ours["mape"], skm.mean_absolute_percentage_error(true, pred))


def test_r2_of_constant_truth_follows_sklearn() -> None:
    assert regression_metrics([2.0, 2.0], [2.0, 2.0])["r2"] == skm.r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert regression_metrics([2.0, 2.0], [1.0, 2.0])["r2"] == skm.r2_score([2.0, 2.0], [1.0, 2.0]) == 0.0


def dense_ranks(values: np.ndarray) -> np.ndarray:
    return np.unique(values, return_inverse=True)[1]


@st.composite
def score_matrices(draw: st.DrawFn) -> np.ndarray:
    """Score columns of each kind the key builder tells apart, with ties, constant columns and stragglers."""
    n, m = draw(st.integers(1, 300)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["float64", "float32", "decimals", "integers", "constant", "near-ties"]))
    if kind == "decimals":  # as CSV files hold them: k / 10**d, possibly negative
        decimals = draw(st.integers(0, 9))
        scores = rng.integers(-(10**decimals), 10**decimals + 1, size=(n, m)) / 10.0**decimals
    elif kind == "integers":  # a wide range: too many histogram bins, so sorted
        scores = rng.integers(-(10**12), 10**12, size=(n, m)).astype(np.float64)
    elif kind == "constant":
        scores = np.full((n, m), draw(st.sampled_from([0.0, -0.0, 0.5, 1e-300])))
    else:
        scores = rng.random((n, m)) * 10.0 ** draw(st.integers(-30, 30))
        scores = scores.astype(np.float32).astype(np.float64) if kind == "float32" else scores
    if kind == "near-ties":  # some scores a few float64 steps apart: distinct, but equal as float32
        near = rng.random(n) < draw(st.sampled_from([0.05, 0.5]))
        base = rng.random(3).astype(np.float32).astype(np.float64)[rng.integers(0, 3, size=(n, m))]
        scores = np.where(near[:, None], base * (1 + rng.integers(-4, 5, size=(n, m)) * 2.0**-52), scores)
    if draw(st.booleans()):  # ties: many rows share a few values
        scores = scores[rng.integers(0, min(n, draw(st.integers(1, 5))), size=n)]
    if draw(st.booleans()):  # one value off the grid / not a float32, wherever the sample may miss it
        row, column = rng.integers(0, n), rng.integers(0, m)
        scores[row, column] = np.nextafter(scores[row, column], np.inf)
    return scores if draw(st.booleans()) else np.asfortranarray(scores)


@settings(SETTINGS, max_examples=200)
@given(score_matrices())
def test_score_keys_order_like_the_scores_and_tie_exactly_unless_marked_rounded(scores: np.ndarray) -> None:
    keys = score_keys(scores)
    assert keys.rows.shape == scores.T.shape and keys.rows.flags.c_contiguous
    for j in range(scores.shape[1]):
        if keys.exact is None:
            assert np.array_equal(dense_ranks(keys.rows[j]), dense_ranks(scores[:, j]))
        else:  # monotone: sorted by score, the keys never decrease
            assert keys.exact is scores
            assert (np.diff(keys.rows[j][np.argsort(scores[:, j], kind="stable")]) >= 0).all()
    if keys.bins:
        assert keys.exact is None and keys.rows.min() >= 0 and keys.rows.max() < keys.bins


@settings(SETTINGS, max_examples=200)
@given(score_matrices(), st.integers(0, 2**32 - 1))
def test_auc_matches_sklearn_on_every_kind_of_score(scores: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    positive = rng.random(len(scores)) < rng.uniform(0.05, 0.95)
    both = 0 < positive.sum() < len(positive)
    expected = skm.roc_auc_score(positive, scores[:, 0]) if both else float("nan")
    assert close(binary_auc(scores[:, 0], positive), expected)


def _scores_of_kind(kind: str, rows: int, rng: np.random.Generator) -> np.ndarray:
    proba = rng.dirichlet(np.ones(3), size=rows)
    if kind == "decimals":
        return np.round(proba, 3)
    return proba.astype(np.float32).astype(np.float64) if kind == "float32" else proba


@pytest.mark.parametrize(("kind", "counted", "rounded"), [
    ("decimals", True, False), ("float32", False, False), ("float64", False, True),
])
def test_large_ovr_auc_matches_sklearn_on_every_key_path(kind: str, counted: bool, rounded: bool) -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 250_000)
    proba = _scores_of_kind(kind, 250_000, rng)
    keys = score_keys(proba)
    assert bool(keys.bins) == counted and (keys.exact is not None) == rounded
    ours = ovr_macro_auc(proba, true)
    assert close(ours, np.mean([skm.roc_auc_score(true == j, proba[:, j]) for j in range(3)]))


@pytest.mark.parametrize("kind", ["decimals", "float32"])
def test_a_straggler_past_the_first_block_falls_back_to_exact_keys(kind: str) -> None:
    rng = np.random.default_rng(1)
    proba = _scores_of_kind(kind, 40_000, rng)
    proba[-1, 1] = np.nextafter(proba[-1, 1], 1.0)  # off the 3-decimal grid, not a float32
    keys = score_keys(proba)
    assert keys.bins == 0 and keys.exact is proba
    positive = rng.random(40_000) < 0.3
    assert close(binary_auc(proba[:, 1], positive), skm.roc_auc_score(positive, proba[:, 1]))


@pytest.mark.parametrize("scores", [[0.001, 0.002, 1e9, 0.002], [1e30, 1e30, 1e30, 1e30], [-1e300, 0.0, 1e300, 0.0]])
def test_a_wide_range_on_the_grid_is_sorted_not_counted(scores: list[float]) -> None:
    column = np.array(scores)
    assert score_keys(column[:, None]).bins == 0
    positive = np.array([True, False, False, True])
    assert close(binary_auc(column, positive), skm.roc_auc_score(positive, column))


def test_auc_of_all_tied_scores_is_one_half() -> None:
    assert binary_auc(np.full(6, 0.5), np.array([True, False] * 3)) == 0.5


def test_labels_match_by_value_across_strings_and_numbers() -> None:
    as_ints = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0], labels=["0", "1"])
    as_strings = classification_metrics(["0", "1", "1", "0"], [0.0, 1.0, 0.0, 0.0], labels=[0, 1])
    assert as_ints == as_strings
    assert as_ints["accuracy"] == 0.75


def test_object_columns_from_pandas_are_accepted() -> None:
    true = np.array(["a", "b", "a"], dtype=object)
    assert classification_metrics(true, ["a", "b", "b"], labels=["b", "a"])["accuracy"] == pytest.approx(
        2 / 3
    )


def test_registry_directions_and_tasks() -> None:
    assert METRICS["accuracy"].direction == "maximize"
    assert METRICS["log_loss"].direction == "minimize" and METRICS["log_loss"].needs_proba
    assert METRICS["rmse"].better(0.1, 0.2) and METRICS["r2"].better(0.9, 0.1)
    assert set(metric_names("regression")) == {"mse", "rmse", "mae", "r2", "mape"}
    assert "roc_auc" not in metric_names("classification", with_proba=False)
    scores = classification_metrics([0, 1], [0, 1], labels=[0, 1], proba=np.eye(2), proba_classes=[0, 1])
    assert set(scores) == set(metric_names("classification"))


def test_compute_metrics_dispatches_by_task() -> None:
    assert compute_metrics("regression", [1.0, 2.0], [1.0, 2.0])["mse"] == 0.0
    assert compute_metrics("classification", ["a", "b"], ["a", "b"], labels=["a", "b"])["accuracy"] == 1.0
    with pytest.raises(InvalidConfig, match="class labels"):
        compute_metrics("classification", ["a"], ["a"])
    with pytest.raises(InvalidConfig, match="unknown task"):
        compute_metrics("ranking", [1], [1])  # type: ignore[arg-type]


def test_error_text_names_field_problem_and_fix() -> None:
    error = PodiumError("has 3 rows but the holdout has 4", field="predictions", hint="predict every row")
    assert str(error) == "predictions: has 3 rows but the holdout has 4. Fix: predict every row"
    assert isinstance(error, ValueError)


PROBA = np.array([[0.9, 0.1], [0.2, 0.8]])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"y_pred": ["a"]}, InvalidPredictions, "has 1 rows but the holdout has 2"),
        ({"y_pred": ["a", "zebra"]}, InvalidPredictions, r"labels \['zebra'\] that are not among"),
        ({"y_true": ["a", "zebra"]}, InvalidHoldout, "add the missing classes"),
        ({"y_true": [0, 1], "y_pred": [0, 7], "labels": [0, 1]}, InvalidPredictions, r"labels \[7\] that are not"),
        ({"y_true": [0, 1], "y_pred": [0, -1], "labels": [0, 1]}, InvalidPredictions, r"labels \[-1\] that are not"),
        ({"y_true": [0, 2], "y_pred": [0, 1], "labels": [0, 2]}, InvalidPredictions, r"labels \[1\] that are not"),
        ({"y_true": [], "y_pred": []}, InvalidHoldout, "no rows"),
        (
            {"y_pred": [0.2, 0.7], "labels": [0, 1], "y_true": [0, 1]},
            InvalidPredictions,
            "look like regression",
        ),
        (
            {"y_pred": [np.nan, 1.0], "labels": [0, 1], "y_true": [0, 1]},
            InvalidPredictions,
            "NaN or infinite",
        ),
        ({"y_pred": np.array(["a", None], dtype=object)}, InvalidPredictions, "missing values"),
        ({"labels": ["a"]}, InvalidConfig, "at least 2 class labels"),
        ({"labels": ["a", "a", "b"]}, InvalidConfig, "duplicates"),
        ({"proba": [[0.5, 0.6], [0.2, 0.8]]}, InvalidPredictions, "do not sum to 1"),
        ({"proba": [[1.2, -0.2], [0.2, 0.8]]}, InvalidPredictions, "negative"),
        ({"proba": [[np.inf, 0.0], [0.2, 0.8]]}, InvalidPredictions, "NaN or infinite"),
        ({"proba": PROBA[:1]}, InvalidPredictions, "shape"),
        ({"proba_classes": ["a", "c"]}, InvalidPredictions, r"\['c'\]"),
        ({"proba_classes": ["a", "a"]}, InvalidPredictions, "each class once"),
        (
            {"proba": np.ones((2, 3)) / 3, "proba_classes": ["a", "b", "b"]},
            InvalidPredictions,
            "each class once",
        ),
        ({"proba_classes": None}, InvalidPredictions, "class order"),
    ],
)
def test_bad_classification_input(kwargs: dict, error: type[PodiumError], message: str) -> None:
    args = {
        "y_true": ["a", "b"],
        "y_pred": ["a", "b"],
        "labels": ["a", "b"],
        "proba": PROBA,
        "proba_classes": ["a", "b"],
    } | kwargs
    with pytest.raises(error, match=message) as raised:
        classification_metrics(args.pop("y_true"), args.pop("y_pred"), **args)
    assert raised.value.field and raised.value.hint and "Fix:" in str(raised.value)


@pytest.mark.parametrize(
    ("true", "pred", "error", "message"),
    [
        ([1.0, 2.0], [1.0], InvalidPredictions, "has 1 rows"),
        ([1.0, 2.0], [1.0, np.nan], InvalidPredictions, r"NaN or infinite values \(first rows \[1\]\)"),
        ([1.0, 2.0], [np.inf, 1.0], InvalidPredictions, "NaN or infinite"),
        ([1.0, np.nan], [1.0, 2.0], InvalidHoldout, "NaN or infinite"),
        ([1.0, 2.0], ["cat", "dog"], InvalidPredictions, "non-numeric"),
        ([], [], InvalidHoldout, "no rows"),
        ([1e200, 1.0], [-1e200, 1.0], InvalidPredictions, "overflow"),
    ],
)
def test_bad_regression_input(true: list, pred: list, error: type[PodiumError], message: str) -> None:
    with pytest.raises(error, match=message):
        regression_metrics(true, pred)
