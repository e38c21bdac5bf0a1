"""Podium's metrics vs the equivalent scikit-learn calls on a 1,000,000-row holdout.

Four scenarios (binary with probabilities, 10 classes with probabilities rounded to 6 decimals as a
CSV file holds them, the same at full float64 precision, regression), the same metric set on both
sides, same data, same process and threads. Prints seconds, speed-up and the largest absolute difference
between the two sets of results; with ``--check``, exits 1 if any speed-up is below ``--min-speedup``
or any difference above 1e-9.

    PYTHONPATH=sdk .venv/bin/python benchmarks/bench_metrics.py --check
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from podium.metrics import classification_metrics, regression_metrics

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Scenario:
    name: str
    podium: Callable[[], dict[str, float]]
    sklearn: Callable[[], dict[str, float]]


def _classification(name: str, labels: np.ndarray, n: int, rng: np.random.Generator,
                    decimals: int | None = 6) -> Scenario:
    k = len(labels)
    y_true = labels[rng.integers(0, k, n)]
    # Noisy but informative probabilities; rounded (as a CSV file holds them) so that tied scores occur,
    # or, with decimals=None, at full float64 precision as predict_proba returns them.
    logits = rng.normal(size=(n, k)) + 1.5 * (y_true[:, None] == labels[None, :])
    proba = np.exp(logits)
    proba = proba / proba.sum(axis=1, keepdims=True)
    if decimals is not None:
        proba = np.round(proba, decimals)
    y_pred = labels[proba.argmax(axis=1)]

    def podium() -> dict[str, float]:
        return classification_metrics(y_true, y_pred, labels=labels, proba=proba, proba_classes=labels)

    def sklearn() -> dict[str, float]:
        macro = skm.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
        weighted = skm.precision_recall_fscore_support(y_true, y_pred, average="weighted", zero_division=0)
        auc = (skm.roc_auc_score(y_true == labels[1], proba[:, 1]) if k == 2
               else skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
        return {
            "accuracy": skm.accuracy_score(y_true, y_pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
            "precision_macro": macro[0], "recall_macro": macro[1], "f1_macro": macro[2],
            "precision_weighted": weighted[0], "recall_weighted": weighted[1], "f1_weighted": weighted[2],
            "roc_auc": auc,
            "log_loss": skm.log_loss(y_true, proba, labels=labels),
        }

    return Scenario(name, podium, sklearn)


def _regression(n: int, rng: np.random.Generator) -> Scenario:
    y_true = rng.normal(10.0, 3.0, size=n)
    y_pred = y_true + rng.normal(size=n)

    def podium() -> dict[str, float]:
        return regression_metrics(y_true, y_pred)

    def sklearn() -> dict[str, float]:
        return {
            "mse": skm.mean_squared_error(y_true, y_pred),
            "rmse": skm.root_mean_squared_error(y_true, y_pred),
            "mae": skm.mean_absolute_error(y_true, y_pred),
            "r2": skm.r2_score(y_true, y_pred),
            "mape": skm.mean_absolute_percentage_error(y_true, y_pred),
        }

    return Scenario("regression", podium, sklearn)


def _best_of(fn: Callable[[], dict[str, float]], repeats: int, budget_s: float = 1.0) -> tuple[float, dict[str, float]]:
    """Fastest of at least ``repeats`` runs, repeating fast functions until ``budget_s`` is spent (noise)."""
    best, result, spent, runs = float("inf"), {}, 0.0, 0
    while runs < repeats or (spent < budget_s and runs < 500):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="at least this many runs per side; the fastest counts")
    parser.add_argument("--min-speedup", type=float, default=5.0)
    parser.add_argument("--check", action="store_true", help="exit 1 if too slow or results differ")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    scenarios = [
        _classification("binary + proba (str labels)", np.array(["cat", "dog"]), args.rows, rng),
        _classification("10 classes + proba (int labels)", np.arange(10), args.rows, rng),
        _classification("full precision: 10 classes + proba", np.arange(10), args.rows, rng, decimals=None),
        _regression(args.rows, rng),
    ]
    print(f"{args.rows:,} rows, fastest of >= {args.repeats} runs per side")
    print(f"{'scenario':34} {'podium s':>9} {'sklearn s':>10} {'speed-up':>9} {'max |diff|':>11}")
    failed = False
    for scenario in scenarios:
        ours_s, ours = _best_of(scenario.podium, args.repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs_s, theirs = _best_of(scenario.sklearn, args.repeats)
        if ours.keys() != theirs.keys():
            raise SystemExit(f"{scenario.name}: metric sets differ: {sorted(ours)} vs {sorted(theirs)}")
        diff = max(abs(ours[name] - float(theirs[name])) for name in ours)
        speedup = theirs_s / ours_s
        ok = speedup >= args.min_speedup and diff <= TOLERANCE
        failed |= not ok
        print(f"{scenario.name:34} {ours_s:9.3f} {theirs_s:10.3f} {speedup:8.1f}x {diff:11.1e}"
              f"{'' if ok else '  FAIL'}")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
