"""Recommend configurations for a new task from the best ones of the most similar known tasks.

The auto-sklearn 1.0 warm start (Feurer et al. 2015): rank the known tasks by L1 distance between
meta-feature vectors and take the configurations that did best on the nearest ones. Each meta-feature is put on a
common scale first (divided by its interquartile range over the known tasks) and each
difference is clipped, so that a row count in the thousands does not drown a ratio in [0, 1] and one
outlying feature cannot decide alone. Pure: no I/O, deterministic for any order of ``known``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from podium.errors import InvalidConfig

MAX_K = 100
NEIGHBOURS = 3  # tasks whose results are pooled for a recommendation
CLIP = 3.0  # a per-feature difference counts at most this many (robust) standard deviations


@dataclass(frozen=True)
class KnownTask:
    name: str
    metafeatures: Mapping[str, float]
    results: Sequence[tuple[dict[str, Any], float]] = field(default_factory=list)  # (config, score; higher better)


@dataclass(frozen=True)
class Recommendation:
    config: dict[str, Any]  # {"estimator": name, "params": {...}}
    source: str  # the known task it was best on
    distance: float  # that task's meta-feature distance to the target
    score: float  # the score it reached there


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _check(target: Mapping[str, float], known: Sequence[KnownTask], k: int) -> list[str]:
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidConfig(f"k is {k!r}", field="k", hint=f"give 1 to {MAX_K}")
    if not known:
        raise InvalidConfig("no known tasks to recommend from", field="known",
                            hint="compute meta-features and results for at least one playground first")
    names = [task.name for task in known]
    if len(set(names)) != len(names):
        raise InvalidConfig("task names repeat", field="known", hint="give each known task a unique name")
    for label, features in [("target", target), *((f"known.{t.name}", t.metafeatures) for t in known)]:
        for key, value in features.items():
            if not math.isfinite(value):
                raise InvalidConfig(f"{value} is not finite", field=f"{label}.{key}",
                                    hint="replace missing meta-features before recommending")
    shared = set(target).intersection(*(task.metafeatures for task in known))
    if not shared:
        raise InvalidConfig("no meta-feature in common with the known tasks", field="target",
                            hint="compute the target's meta-features with the same podium.automl version")
    return sorted(shared)


def distances(target: Mapping[str, float], known: Sequence[KnownTask]) -> dict[str, float]:
    """Normalised L1 distance (mean over shared meta-features) from ``target`` to each known task."""
    keys = _check(target, known, 1)
    table = np.array([[task.metafeatures[key] for key in keys] for task in known], dtype=np.float64)
    table.sort(axis=0)  # per-feature statistics must not depend on the order of known
    q75, q25 = np.percentile(table, [75, 25], axis=0)
    scale = q75 - q25
    spread = table[-1] - table[0]
    scale = np.where(scale > 0, scale, np.where(spread > 0, spread, 1.0))  # constant feature: plain units
    point = np.array([target[key] for key in keys], dtype=np.float64)
    out = {}
    for task in known:
        row = np.array([task.metafeatures[key] for key in keys], dtype=np.float64)
        out[task.name] = float(np.mean(np.minimum(np.abs(point - row) / scale, CLIP)))
    return out


def recommend(
    target: Mapping[str, float], known: Sequence[KnownTask], k: int = 3, *, neighbours: int = NEIGHBOURS
) -> list[Recommendation]:
    """Up to ``k`` distinct configurations for ``target``, most promising first.

    A known task with the very same meta-features (distance 0: the same data set) gives its own
    results first, best first. Then the configurations tried on the ``neighbours`` nearest tasks, by
    their mean rank there: one task's best may be a lucky draw of its cross-validation, several
    similar tasks agreeing is stronger evidence (the k-NN ranking method of Brazdil et al. 2003). Then the remaining tasks' best, second best, ..., nearest first.
    """
    _check(target, known, k)
    if not isinstance(neighbours, int) or not 1 <= neighbours <= MAX_K:
        raise InvalidConfig(f"neighbours is {neighbours!r}", field="neighbours", hint=f"give 1 to {MAX_K}")
    near = distances(target, known)
    order = sorted(known, key=lambda task: (near[task.name], task.name))
    ranked = {task.name: sorted(task.results, key=lambda r: (-r[1], _key(r[0]))) for task in order}
    exact = [task for task in order if near[task.name] == 0.0]
    pool = order[: max(neighbours, len(exact))]
    candidates: list[tuple[KnownTask, dict[str, Any], float]] = []
    candidates += _round_robin(exact, ranked)
    candidates += _by_mean_rank(pool, ranked)
    candidates += _round_robin(order, ranked)
    chosen: list[Recommendation] = []
    seen: set[str] = set()
    for task, config, score in candidates:
        if _key(config) in seen:
            continue
        seen.add(_key(config))
        chosen.append(Recommendation(config=config, source=task.name, distance=near[task.name], score=score))
        if len(chosen) == k:
            break
    return chosen


Ranked = dict[str, list[tuple[dict[str, Any], float]]]


def _round_robin(tasks: Sequence[KnownTask], ranked: Ranked) -> list[tuple[KnownTask, dict[str, Any], float]]:
    """Each task's best in task order, then each one's second best, ..."""
    depth = max((len(ranked[task.name]) for task in tasks), default=0)
    return [(task, *ranked[task.name][rank]) for rank in range(depth) for task in tasks
            if rank < len(ranked[task.name])]


def _by_mean_rank(tasks: Sequence[KnownTask], ranked: Ranked) -> list[tuple[KnownTask, dict[str, Any], float]]:
    """Configurations of ``tasks`` (in distance order) by mean rank there (0 = best; ties share the mean
    rank); the source is the nearest task that tried each one. Ranks, not scores: one very bad result
    on a task must not make every other one look equally good."""
    ranks: dict[str, list[float]] = {}
    first: dict[str, tuple[int, KnownTask, dict[str, Any], float]] = {}
    for position, task in enumerate(tasks):
        results = ranked[task.name]
        scores = np.array([score for _, score in results], dtype=np.float64)
        for config, score in results:
            rank = float(np.sum(scores > score)) + (float(np.sum(scores == score)) - 1.0) / 2.0
            ranks.setdefault(_key(config), []).append(rank)
            first.setdefault(_key(config), (position, task, config, float(score)))
    order = sorted(ranks, key=lambda key: (float(np.mean(ranks[key])), first[key][0], key))
    return [first[key][1:] for key in order]
