"""Let the platform train: training submissions, and the configurations recommended from similar playgrounds.

    pg.submit_training("maml-5shot", "maml", {"kShot": 5, "iterations": 2000})
    pg.submit_training("tpe", "tpe-search", {"trials": 40}, data=(X_train, y_train))
    recs = pg.get_recommendations()          # best configurations of the most similar playgrounds
    pg.submit_recommendation(recs[0], name="from-iris")   # one call: a training submission of it

Like :mod:`podium.deployments`, the functions take the playground object, so the client's methods are these
functions themselves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic.alias_generators import to_camel

from podium.api import SUBMISSION
from podium.data import write_table
from podium.errors import InvalidConfig


class Playground(Protocol):
    name: str
    namespace: str

    def get(self) -> dict[str, Any]: ...
    def _poll(self, check: Any, timeout: float, what: str, progress: bool | None = None,
              interval: float = 0.2) -> Any: ...
    def _prefix(self) -> str: ...
    def _create(self, resource: Any, name: str, spec: dict[str, Any], files: Any = ()) -> dict[str, Any]: ...
    def _submission_spec(self, track: str, source: dict[str, Any], description: str | None,
                         metadata: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RecommendationView:
    """One recommended configuration: where it ranked well, and the training spec that reproduces it."""

    rank: int
    source_playground: str
    distance: float
    score: float | None
    metric: str | None
    version: int | None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def algorithm(self) -> str:
        return str(self.training.get("algorithm", ""))

    def __str__(self) -> str:
        score = f"{self.metric} {self.score:.4g}" if self.score is not None else "unscored"
        return (f"#{self.rank} {self.algorithm} from {self.source_playground} v{self.version} ({score}, "
                f"distance {self.distance:.3f})")


def submit_training(pg: Playground, name: str, algorithm: str, hyperparameters: dict[str, Any] | None = None, *,
                    data: tuple[Any, Any] | None = None, resources: dict[str, Any] | None = None,
                    track: str = "experiment", description: str | None = None, metadata: Any = None,
                    **training: Any) -> dict[str, Any]:
    """Ask the platform to train a model (``algorithm``: maml, fomaml, reptile, protonet or tpe-search).

    ``data``: ``(features, labels)`` to train on, uploaded to new keys below your prefix; default: the
    playground's ``spec.trainingData``. Extra keyword arguments are TrainingSpec fields (camelCase or
    snake_case: ``timeout_seconds``, ``node_selector``, ``tolerations``). The spec is checked before anything
    is uploaded; a bad hyperparameter fails here, naming it.
    """
    spec: dict[str, Any] = {"algorithm": algorithm, "hyperparameters": dict(hyperparameters or {}),
                            **{to_camel(key): value for key, value in training.items()}}  # as the API server spells them
    if resources is not None:
        spec["resources"] = resources
    files = []
    if data is not None:
        features, labels = data
        token = secrets.token_hex(6)
        kind = "npy" if np.ndim(features) > 2 else "csv"
        uris = (f"{pg._prefix()}training/{name}-features-{token}.{kind}", f"{pg._prefix()}training/{name}-labels-{token}.csv")
        spec["data"] = {"features": uris[0], "labels": uris[1]}
        files = [(lambda scratch: write_table(features, scratch / f"features.{kind}"), uris[0]),
                 (lambda scratch: write_table(np.asarray(labels), scratch / "labels.csv"), uris[1])]
    # Checked (pydantic, then a dry run) before anything is uploaded: a bad hyperparameter fails naming it.
    return pg._create(SUBMISSION, name, pg._submission_spec(track, {"training": spec}, description, metadata), files)


def get_recommendations(pg: Playground) -> list[RecommendationView]:
    """The configurations that ranked best on the playgrounds most like this one (by meta-features of the
    training data), nearest first; empty until this playground and another have been profiled."""
    rows = (pg.get().get("status") or {}).get("recommendations") or []
    return [RecommendationView(rank=int(row.get("rank", i + 1)), source_playground=str(row.get("sourcePlayground")),
                               distance=float(row.get("distance", 0.0)), score=row.get("score"),
                               metric=row.get("metric"), version=row.get("version"),
                               training=dict(row.get("training") or {})) for i, row in enumerate(rows)]


def wait_for_recommendations(pg: Playground, timeout: float = 300.0, *,
                             progress: bool | None = None) -> list[RecommendationView]:
    """:func:`get_recommendations`, once there are any: the training data is profiled by a Job, and another
    profiled playground of the same task needs an evaluated training submission first."""

    def found(line: Any) -> list[RecommendationView] | None:
        status = pg.get().get("status") or {}
        features = status.get("metaFeatures") or {}
        if features.get("message"):
            raise InvalidConfig(features["message"], field="spec.trainingData",
                                hint="give training data the profile Job can read")
        line.set("profiled" if features.get("count") else "profiling the training data")
        return get_recommendations(pg) or None

    views: list[RecommendationView] = pg._poll(found, timeout, f"waiting for recommendations for {pg.name}",
                                               progress, interval=1.0)
    return views


def submit_recommendation(pg: Playground, recommendation: RecommendationView | int, *, name: str,
                          **overrides: Any) -> dict[str, Any]:
    """A training submission of a recommendation (or of the one with this rank); ``overrides`` as in submit_training."""
    if isinstance(recommendation, int):
        found = [r for r in get_recommendations(pg) if r.rank == recommendation]
        if not found:
            raise InvalidConfig(f"no recommendation of rank {recommendation}", field="recommendation",
                                hint="pick a rank from get_recommendations()")
        recommendation = found[0]
    training = recommendation.training
    return submit_training(pg, name, str(training.get("algorithm")), dict(training.get("hyperparameters") or {}),
                           **overrides)
