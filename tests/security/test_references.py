"""Confused deputy: a Submission names only its submitter's own uploads, never what the operator can read.

The trusted stage and score steps fetch what a Submission names with the operator's access. Played
against the real operator: a participant points a Submission at the holdout labels, the stored private
split, another participant's upload or a file on the operator's host, and is rejected at admission,
naming the field, before any Job runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from podium.client import ModelPlayground
from podium.uri import upload_prefix
from tests.integration.conftest import cluster, core, custom_objects  # noqa: F401  (fixtures)
from tests.integration.holdouts import iris_split, open_iris_playground

pytestmark = pytest.mark.slow  # flows through the real operator

SUB = ("podium.dev", "v1alpha1", "default", "submissions")


@pytest.fixture
def iris(cluster, custom_objects):  # noqa: F811
    playground, holdout, ready = open_iris_playground(custom_objects, competition={"privateFraction": 0.5, "seed": 3})
    return playground, holdout, ready["status"]["split"]["uri"], np.asarray(iris_split()[3], dtype=object)


def _submit(custom_objects, name: str, source: dict) -> None:  # noqa: F811
    custom_objects.create_namespaced_custom_object(*SUB, {
        "apiVersion": "podium.dev/v1alpha1", "kind": "Submission", "metadata": {"name": name},
        "spec": {"playground": "iris", "track": "experiment", **source}})


def test_submissions_naming_objects_outside_their_uploads_are_rejected_naming_the_field(iris, custom_objects):  # noqa: F811
    playground, (features_uri, labels_uri), split_uri, y = iris
    playground.submit_predictions(y, name="bob-honest")  # bob's own upload, below bob's prefix
    bob_upload = playground.submission("bob-honest")["spec"]["predictions"]["uri"]
    me = playground.whoami()
    mine = upload_prefix("podium", "default", "iris", me)
    attacks = {
        "labels-as-predictions": ({"predictions": {"uri": labels_uri}}, "predictions.uri"),
        "split-as-preprocessor": ({"model": {"uri": f"{mine}m.tar.gz", "preprocessorUri": split_uri}},
                                  "model.preprocessorUri"),
        "private-score-as-model": ({"model": {"uri": "s3://podium/podium-private/default/iris/scores/x.json"}},
                                   "model.uri"),
        "host-file": ({"predictions": {"uri": "/etc/passwd"}}, "predictions.uri"),
        "dot-dot": ({"predictions": {"uri": f"{mine}../../../../holdouts/iris/labels.csv"}}, "predictions.uri"),
        "someone-elses-upload": ({"predictions": {"uri": bob_upload.replace(f"/{me}/", "/bob/")}},
                                 "predictions.uri"),
    }
    for name, (source, _) in attacks.items():
        _submit(custom_objects, name, source)
    results = {s["metadata"]["name"]: s["status"] for s in playground.wait_for(*attacks, timeout=90)}
    for name, (_, field) in attacks.items():
        status = results[name]
        assert status["phase"] == "Rejected", (name, status)
        assert status["message"].startswith(f"{field}: ") and "upload" in status["message"], status["message"]
        assert "version" not in status and not status.get("metrics")
    jobs = _job_names(cluster_api=playground)
    assert not any(job.startswith(tuple(attacks)) for job in jobs), f"a Job ran for a rejected submission: {jobs}"
    (honest,) = playground.wait_for("bob-honest")
    assert honest["status"]["phase"] == "Evaluated"  # the participant's own upload still works


def _job_names(cluster_api: ModelPlayground) -> set[str]:
    import kubernetes.client

    batch = kubernetes.client.BatchV1Api(cluster_api.api.api_client)
    return {job.metadata.name for job in batch.list_namespaced_job("default").items}
