"""Benchmark podium.automl: recommendation quality (leave-one-out) and TPE vs random search.

    python benchmarks/bench_automl.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_automl.py --quick    # smoke test: smaller data sets, fewer trials (< 1 minute)

(a) Recommendations. Every data set (scikit-learn's bundled ones and generated ones with fixed seeds)
is scored by 3-fold CV accuracy with every configuration of a fixed portfolio; a data set's best of
those is its "best known". For each data set in turn, the others are the known tasks: meta-features
(podium.automl.metafeatures) and their portfolio scores go to podium.automl.recommend, and the
recommended configuration is a hit when the held-out set's score with it is within 1% (relative) of its
best known. The baseline is a uniformly random portfolio choice (its expected hit rate is the share of
configurations within 1%); a meta-feature-free baseline, the configuration with the best mean rank on
the other sets (a static portfolio, as in auto-sklearn 2.0), is printed beside it. Target: ≥ 2× random.

(b) TPE vs random search (podium.automl.hpo.run_search) at equal trial budget on 5 data sets, the best
CV accuracy averaged over seeds. Target: TPE's best ≥ random's on at least 4 of 5 (issue 11).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from podium.automl import metafeatures
from podium.automl.hpo import run_search
from podium.automl.recommend import KnownTask, recommend
from podium.automl.space import SearchSpace, build_estimator

TOLERANCE = 0.01  # "within 1%" of the best known score, relative
Data = tuple[np.ndarray, np.ndarray]

PORTFOLIO: list[dict[str, Any]] = [
    *({"estimator": "logistic_regression", "params": {"C": c}} for c in (0.01, 1.0, 100.0)),
    *({"estimator": "knn", "params": {"n_neighbors": n}} for n in (1, 5, 15, 40)),
    *({"estimator": "svc", "params": {"C": c}} for c in (0.1, 1.0, 10.0)),
    {"estimator": "random_forest", "params": {"n_estimators": 60}},
    {"estimator": "random_forest", "params": {"n_estimators": 60, "max_depth": 4}},
    {"estimator": "extra_trees", "params": {"n_estimators": 60}},
    {"estimator": "decision_tree", "params": {"max_depth": 3}},
    {"estimator": "decision_tree", "params": {}},
    {"estimator": "gaussian_nb", "params": {}},
    {"estimator": "ridge", "params": {"alpha": 1.0}},
    {"estimator": "hist_gradient_boosting", "params": {"max_iter": 50}},
]

SEARCH_SPACE = {"estimators": {
    "svc": {"C": {"type": "float", "low": 1e-2, "high": 1e3, "log": True},
            "gamma": {"type": "float", "low": 1e-4, "high": 10.0, "log": True}},
    "logistic_regression": {"C": {"type": "float", "low": 1e-3, "high": 1e3, "log": True}},
    "knn": {"n_neighbors": {"type": "int", "low": 1, "high": 50, "log": True},
            "weights": {"type": "categorical", "choices": ["uniform", "distance"]}},
    "random_forest": {"n_estimators": {"type": "int", "low": 10, "high": 60, "log": True},
                      "max_depth": {"type": "int", "low": 1, "high": 20, "log": True},
                      "max_features": {"type": "float", "low": 0.1, "high": 1.0}},
}}
SEARCH_SETS = ("breast_cancer", "wine", "classification-3c", "moons-0.35", "circles-0.2")


def datasets(rows: int) -> dict[str, Callable[[], Data]]:
    """Name -> loader; generated sets have ``rows`` rows, bundled ones are subsampled to it."""
    from sklearn import datasets as d

    def bundled(loader: Callable[..., Any]) -> Callable[[], Data]:
        def load() -> Data:
            x, y = loader(return_X_y=True)
            if len(x) > rows:
                keep = np.sort(np.random.default_rng(0).permutation(len(x))[:rows])
                x, y = x[keep], y[keep]
            return x, y
        return load

    def classification(**kw: Any) -> Callable[[], Data]:
        return lambda: d.make_classification(n_samples=rows, **kw)

    return {
        "iris": bundled(d.load_iris), "wine": bundled(d.load_wine),
        "breast_cancer": bundled(d.load_breast_cancer), "digits": bundled(d.load_digits),
        "classification-2c": classification(n_features=10, n_informative=4, random_state=1),
        "classification-3c": classification(n_features=20, n_informative=10, n_classes=3, random_state=2),
        "classification-noisy": classification(n_features=6, n_informative=2, n_redundant=2, flip_y=0.1,
                                               random_state=3),
        "classification-4c": classification(n_features=30, n_informative=5, n_classes=4, random_state=4),
        "moons-0.2": lambda: d.make_moons(rows, noise=0.2, random_state=5),
        "moons-0.35": lambda: d.make_moons(rows, noise=0.35, random_state=6),
        "circles-0.1": lambda: d.make_circles(rows, noise=0.1, factor=0.5, random_state=7),
        "circles-0.2": lambda: d.make_circles(rows, noise=0.2, factor=0.4, random_state=8),
        "blobs-3": lambda: d.make_blobs(rows, centers=3, n_features=2, cluster_std=2.0, random_state=9),
        "blobs-5": lambda: d.make_blobs(rows, centers=5, n_features=8, cluster_std=3.0, random_state=10),
        "quantiles": lambda: d.make_gaussian_quantiles(n_samples=rows, n_features=4, n_classes=2,
                                                       random_state=11),
    }


def cv_accuracy(config: dict[str, Any], x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    model = build_estimator(config["estimator"], config["params"], "classification", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(cross_val_score(model, x, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))))


def within(score: float, best: float) -> bool:
    return score >= best - TOLERANCE * abs(best)


def _name(config: dict[str, Any]) -> str:
    params = ",".join(f"{k}={v}" for k, v in config["params"].items())
    return f"{config['estimator']}({params})"


def recommendation_quality(sets: dict[str, Data], portfolio: list[dict[str, Any]]) -> bool:
    names = list(sets)
    scores = {name: [cv_accuracy(c, *sets[name]) for c in portfolio] for name in names}
    features, timings = {}, {}
    for name in names:
        started = time.perf_counter()
        features[name] = metafeatures.compute(*sets[name], "classification")
        timings[name] = time.perf_counter() - started
    rows = []
    for held in names:
        known = [KnownTask(n, features[n], list(zip(portfolio, scores[n], strict=True))) for n in names if n != held]
        best = max(scores[held])
        good = [within(s, best) for s in scores[held]]
        recs = recommend(features[held], known, k=3)
        picked = [scores[held][portfolio.index(r.config)] for r in recs]
        # static portfolio: best mean rank (rank 0 = best) over the other sets
        ranks = np.mean([np.argsort(np.argsort(-np.array(scores[n]))) for n in names if n != held], axis=0)
        static = scores[held][int(np.argmin(ranks))]
        n, g = len(portfolio), sum(good)
        random3 = 1 - math.comb(n - g, 3) / math.comb(n, 3)
        rows.append((held, sets[held][0].shape, timings[held], best, recs[0], picked, static, g / n, random3))
    print(f"(a) recommendation quality: leave-one-out over {len(names)} data sets, portfolio of {len(portfolio)} "
          f"configurations, 3-fold CV accuracy; hit = within {TOLERANCE:.0%} of the set's best known")
    header = (f"{'data set':<22} {'rows':>5} {'feat':>4} {'mf s':>5} {'best':>6}  {'recommended (from)':<52} "
              f"{'score':>6} {'hit':>4} {'top3':>4} {'static':>6} {'random':>6}")
    print(header)
    print("-" * len(header))
    for held, shape, took, best, first, picked, static, rate, _ in rows:
        label = f"{_name(first.config)} ({first.source})"
        print(f"{held:<22} {shape[0]:>5} {shape[1]:>4} {took:>5.2f} {best:>6.3f}  {label[:52]:<52} {picked[0]:>6.3f} "
              f"{'yes' if within(picked[0], best) else 'no':>4} "
              f"{'yes' if any(within(p, best) for p in picked) else 'no':>4} "
              f"{'yes' if within(static, best) else 'no':>6} {rate:>6.2f}")
    hit1 = float(np.mean([within(r[5][0], r[3]) for r in rows]))
    hit3 = float(np.mean([any(within(p, r[3]) for p in r[5]) for r in rows]))
    static_rate = float(np.mean([within(r[6], r[3]) for r in rows]))
    random1, random3 = float(np.mean([r[7] for r in rows])), float(np.mean([r[8] for r in rows]))
    reached = hit1 >= 2 * random1
    print(f"meta-features ({metafeatures.MAX_ROWS} rows max): mean {np.mean(list(timings.values())):.2f} s, "
          f"max {max(timings.values()):.2f} s per data set")
    print(f"top-1 recommended within 1%: {hit1:.2f} | random choice (expected) {random1:.2f} | ratio "
          f"{hit1 / random1:.2f}x | target >= 2x random: {'reached' if reached else 'NOT reached'}")
    print(f"top-3 recommended, any within 1%: {hit3:.2f} | 3 random choices (expected) {random3:.2f} | ratio "
          f"{hit3 / random3:.2f}x")
    print(f"static portfolio (best mean rank on the others, no meta-features): {static_rate:.2f} | ratio to top-1 "
          f"recommendation {hit1 / static_rate if static_rate else float('inf'):.2f}x")
    return bool(reached)


def tpe_vs_random(sets: dict[str, Data], trials: int, seeds: int) -> bool:
    space = SearchSpace.parse(SEARCH_SPACE)
    print(f"\n(b) TPE vs random search: {trials} trials each, {seeds} seed(s), best 3-fold CV accuracy "
          f"(mean over seeds); space: {', '.join(space.estimators)}")
    header = f"{'data set':<22} {'random best':>11} {'tpe best':>9} {'tpe/random':>10} {'tpe s':>6} {'random s':>8}  tpe>=random"
    print(header)
    print("-" * len(header))
    wins = 0
    for name in SEARCH_SETS:
        x, y = sets[name]
        best: dict[str, list[float]] = {"tpe": [], "random": []}
        took = {"tpe": 0.0, "random": 0.0}
        for seed in range(seeds):
            for sampler in ("random", "tpe"):
                started = time.perf_counter()
                result = run_search(x, y, task="classification", space=space, trials=trials, sampler=sampler,
                                    seed=seed, metric="accuracy")
                took[sampler] += time.perf_counter() - started
                best[sampler].append(result.best_score)
        tpe, rnd = float(np.mean(best["tpe"])), float(np.mean(best["random"]))
        wins += tpe >= rnd
        print(f"{name:<22} {rnd:>11.4f} {tpe:>9.4f} {tpe / rnd:>10.4f} {took['tpe']:>6.1f} {took['random']:>8.1f}  "
              f"{'yes' if tpe >= rnd else 'no'}")
    reached = wins >= 4
    print(f"TPE >= random on {wins} of {len(SEARCH_SETS)} data sets | target >= 4 of 5: "
          f"{'reached' if reached else 'NOT reached'}")
    return reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data sets and budgets: a smoke test")
    parser.add_argument("--rows", type=int, help="rows per data set (default 400, quick 150)")
    parser.add_argument("--trials", type=int, help="trials per search (default 40, quick 15)")
    parser.add_argument("--seeds", type=int, help="seeds per search (default 3, quick 1)")
    parser.add_argument("--part", choices=["all", "recommend", "search"], default="all")
    args = parser.parse_args(argv)
    rows = args.rows or (150 if args.quick else 400)
    trials = args.trials or (15 if args.quick else 40)
    seeds = args.seeds or (1 if args.quick else 3)
    started = time.perf_counter()
    # one thread per fit: OpenMP/BLAS pools spinning on a shared 2-core machine cost more than they give
    limits = threadpool_limits(1)
    sets = {name: load() for name, load in datasets(rows).items()}
    if args.quick:  # the leave-one-out still needs at least 12 data sets
        sets = {name: data for name, data in sets.items() if name not in ("digits", "classification-4c", "blobs-5")}
    portfolio = PORTFOLIO
    if args.quick:  # boosting is the slowest fit by far; the smoke test does without it
        portfolio = [config for config in PORTFOLIO if config["estimator"] != "hist_gradient_boosting"]
    if args.part in ("all", "recommend"):
        recommendation_quality(sets, portfolio)
    if args.part in ("all", "search"):
        tpe_vs_random(sets, trials, seeds)
    limits.restore_original_limits()
    print(f"\ntotal {time.perf_counter() - started:.0f} s ({'quick' if args.quick else 'full'} run, 1 thread per fit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
