"""Evaluations read the operator's own copy of the holdout, never the source a playground names.

A holdout given as a local path is copied below the operator-only prefix at Ready (no Job can read the
operator's host, and none is pointed at the source); a source changed afterwards changes no score.
"""

from __future__ import annotations

import numpy as np
import pytest

from podium import storage
from podium.client import ModelPlayground
from podium.data import write_table
from tests.integration.conftest import cluster, core, custom_objects  # noqa: F401  (fixtures)
from tests.integration.holdouts import iris_playground, iris_split

pytestmark = pytest.mark.slow  # flows through the real operator

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


def test_a_local_path_holdout_is_copied_and_only_the_copy_is_used(cluster, custom_objects, tmp_path):  # noqa: F811
    _, X_test, _, y_test = iris_split()
    features = write_table(X_test, tmp_path / "features.csv")
    labels = write_table(np.asarray(y_test), tmp_path / "labels.csv")
    custom_objects.create_namespaced_custom_object(*PG, iris_playground("local", str(features), str(labels)))
    playground = ModelPlayground("local")
    status = playground.wait_ready(timeout=60)["status"]
    snapshot = status["holdout"]
    private = f"s3://podium/podium-private/default/local/{playground.get()['metadata']['uid']}/holdout/"
    assert snapshot["features"].startswith(private) and snapshot["labels"].startswith(private)
    assert (snapshot["sourceFeatures"], snapshot["sourceLabels"]) == (str(features), str(labels))
    assert storage.read_bytes(snapshot["labels"]) == labels.read_bytes()

    predictions = np.asarray(y_test, dtype=object)
    playground.submit_predictions(predictions, name="before")
    (before,) = playground.wait_for("before")
    assert before["status"]["phase"] == "Evaluated" and before["status"]["score"] == 1.0

    # The source is changed under the same path: later evaluations still score against the copy.
    labels.write_text("\n".join(["label", *(["setosa"] * len(y_test))]) + "\n")
    playground.submit_predictions(predictions, name="after")
    (after,) = playground.wait_for("after")
    assert after["status"]["phase"] == "Evaluated" and after["status"]["score"] == 1.0
    for job in ("before-score", "after-score"):
        assert str(tmp_path) not in " ".join(_command(playground, job))  # no Job is pointed at the source


def _command(playground: ModelPlayground, job: str) -> list[str]:
    import kubernetes.client

    batch = kubernetes.client.BatchV1Api(playground.api.api_client)
    (container,) = batch.read_namespaced_job(job, "default").spec.template.spec.containers
    return list(container.command)
