"""The trusted stage and score Jobs hold no object-store credentials: only a presigned URL per object.

Played against the real operator in the local cluster, whose object store verifies signatures and
grants as S3 does: what a Job was handed lets it read (or write) exactly its own objects and nothing
else — not another key, not a listing, not the holdout behind the copy it was given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import kubernetes.client
import numpy as np
import pytest

from podium import storage
from podium.errors import PodiumError
from tests.integration.conftest import cluster, core, custom_objects  # noqa: F401  (fixtures)
from tests.integration.holdouts import iris_split, open_iris_playground

pytestmark = pytest.mark.slow  # flows through the real operator



@pytest.fixture
def evaluated(cluster, custom_objects):  # noqa: F811
    """A competition playground with one model and one predictions-only submission evaluated."""
    X_train, _, y_train, y_test = iris_split()
    playground, holdout, _ = open_iris_playground(custom_objects, competition={"privateFraction": 0.5, "seed": 3})
    from sklearn.linear_model import LogisticRegression

    playground.submit_model(LogisticRegression(max_iter=500).fit(X_train, y_train), name="model",
                            example_data=X_train)
    playground.submit_predictions(np.asarray(y_test, dtype=object), name="preds")
    statuses = {s["metadata"]["name"]: s["status"]["phase"] for s in playground.wait_for("model", "preds")}
    assert statuses == {"model": "Evaluated", "preds": "Evaluated"}, statuses
    batch = kubernetes.client.BatchV1Api(playground.api.api_client)
    return holdout, {job.metadata.name: job for job in batch.list_namespaced_job("default").items}


def _container(job) -> kubernetes.client.V1Container:
    (container,) = job.spec.template.spec.containers
    return container


def test_no_evaluation_job_carries_credentials_or_a_bare_object_uri(evaluated):
    _, jobs = evaluated
    assert {"model-stage", "model-predict", "model-score", "preds-score"} <= set(jobs)
    for name, job in jobs.items():
        container = _container(job)
        assert not container.env and not container.env_from, f"{name} has environment: {container.env}"
        assert not any(arg.startswith("s3://") for arg in container.command), f"{name}: {container.command}"


def _urls(job) -> list[str]:
    return [arg for arg in _container(job).command if arg.startswith(("http://", "https://"))]


def _read(uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Read ``uri`` with podium.storage in a process that has exactly the environment ``env``."""
    code = "import sys; from podium import storage; sys.stdout.write(str(len(storage.read_bytes(sys.argv[1]))))"
    return subprocess.run([sys.executable, "-c", code, uri], env=env, capture_output=True, text=True, timeout=60)


def test_a_job_reaches_exactly_the_objects_it_was_handed(evaluated, cluster):  # noqa: F811
    (features_uri, labels_uri), jobs = evaluated
    score_urls = _urls(jobs["model-score"])
    assert score_urls, "the score Job names its objects by presigned URL"
    labels_url = next(url for url in score_urls if "/labels" in urlsplit(url).path)
    assert storage.read_bytes(labels_url)  # its own object: readable with nothing but the URL

    # The same signature for another key (the source holdout, another submission's result) is refused.
    parts = urlsplit(labels_url)
    for other in ("/podium/holdouts/iris/labels.csv", "/podium/podium-results/default/iris/preds.json"):
        with pytest.raises(PodiumError):
            storage.read_bytes(urlunsplit(parts._replace(path=other)))
    # A GET URL does not write.
    with pytest.raises(PodiumError):
        storage.write_bytes(labels_url, b"forged labels")

    # With a Job's environment (no credentials), the store itself refuses reads and listings.
    job_env = {"PATH": os.environ["PATH"], "HOME": "/tmp", "PODIUM_S3_ENDPOINT": cluster.store.endpoint,
               "AWS_DEFAULT_REGION": cluster.store.region}
    for uri in (labels_uri, features_uri, "s3://podium/podium-private/default/iris/split.json"):
        done = _read(uri, job_env)
        assert done.returncode != 0 and "denied" in done.stderr.lower(), (uri, done.stdout, done.stderr[-500:])
    lister = subprocess.run(
        [sys.executable, "-c", "from podium import storage; print(storage.list_uris('s3://podium/'))"],
        env=job_env, capture_output=True, text=True, timeout=60)
    assert lister.returncode != 0, lister.stdout
