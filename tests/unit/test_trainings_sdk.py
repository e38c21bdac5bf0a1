"""The SDK's training calls build the Submission the API server takes (camelCase, data uploaded to new keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from podium import trainings
from podium.api.submission import SubmissionSpec
from podium.errors import InvalidConfig


class Playground:
    name, namespace = "iris", "default"

    def __init__(self, status: dict[str, Any] | None = None) -> None:
        self.created: list[tuple[str, dict[str, Any], list]] = []
        self.status = status or {}

    def get(self) -> dict[str, Any]:
        return {"status": self.status}

    def _prefix(self) -> str:
        return "s3://podium/uploads/default/iris/ada/"

    def _submission_spec(self, track, source, description, metadata) -> dict[str, Any]:
        return {"playground": self.name, "track": track, **source}

    def _create(self, resource, name, spec, files=()) -> dict[str, Any]:
        self.created.append((name, spec, list(files)))
        return {"metadata": {"name": name}, "spec": spec}


def test_keyword_fields_are_sent_as_the_api_server_spells_them_and_validate():
    pg = Playground()
    trainings.submit_training(pg, "m", "maml", {"kShot": 5}, timeout_seconds=600, node_selector={"pool": "a100"},
                              resources={"gpu": 2})
    (name, spec, files), = pg.created
    assert spec["training"] == {"algorithm": "maml", "hyperparameters": {"kShot": 5}, "timeoutSeconds": 600,
                                "nodeSelector": {"pool": "a100"}, "resources": {"gpu": 2}}
    assert SubmissionSpec.model_validate(spec).training is not None and files == []


def test_data_given_goes_to_new_keys_below_the_callers_prefix(tmp_path: Path):
    pg = Playground()
    trainings.submit_training(pg, "t", "tpe-search", {"trials": 3}, data=(np.zeros((6, 2)), np.arange(6) % 2))
    (_, spec, files), = pg.created
    data = spec["training"]["data"]
    assert all(uri.startswith(pg._prefix() + "training/t-") for uri in data.values())
    assert [uri for _, uri in files] == [data["features"], data["labels"]]
    assert [write(tmp_path).exists() for write, _ in files] == [True, True]


def test_a_recommendation_becomes_a_training_submission_by_rank():
    rec = {"rank": 1, "sourcePlayground": "wine", "distance": 0.2, "score": 0.97, "metric": "accuracy", "version": 4,
           "training": {"algorithm": "tpe-search", "hyperparameters": {"trials": 1, "space": {"estimators": {
               "knn": {"n_neighbors": 5}}}}}}
    pg = Playground({"recommendations": [rec]})
    (view,) = trainings.get_recommendations(pg)
    assert str(view) == "#1 tpe-search from wine v4 (accuracy 0.97, distance 0.200)"
    trainings.submit_recommendation(pg, 1, name="from-wine")
    assert pg.created[0][1]["training"]["hyperparameters"] == rec["training"]["hyperparameters"]
    with pytest.raises(InvalidConfig, match="^recommendation: no recommendation of rank 2"):
        trainings.submit_recommendation(pg, 2, name="x")
