"""Many submissions at once get dense, unique versions; an operator killed mid-evaluation loses nothing."""

from __future__ import annotations

import concurrent.futures
import time

import numpy as np
import pytest

from podium.client import ModelPlayground
from tests.helpers import wait_for
from tests.integration.holdouts import iris_playground, iris_split, upload_holdout

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


@pytest.fixture
def experiment(cluster, custom_objects):
    _, X_test, _, y_test = iris_split()
    holdout = upload_holdout(X_test, y_test, "s3://podium/holdouts/iris")
    custom_objects.create_namespaced_custom_object(*PG, iris_playground("iris", *holdout, leaderboardSize=200))
    playground = ModelPlayground("iris")
    playground.wait_ready()
    return playground, np.asarray(y_test, dtype=object)


def _submit_many(playground: ModelPlayground, y_test: np.ndarray, names: list[str]) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: playground.submit_predictions(y_test, name=name), names))


def _jobs(cluster) -> list[dict]:
    import kubernetes.client

    config = kubernetes.client.Configuration()
    config.host = cluster.api.url
    batch = kubernetes.client.BatchV1Api(kubernetes.client.ApiClient(config))
    return batch.list_namespaced_job("default").to_dict()["items"]


@pytest.mark.timeout(900)
def test_hundred_concurrent_submissions_get_versions_1_to_100(cluster, experiment):
    playground, y_test = experiment
    names = [f"s{index:03d}" for index in range(100)]
    _submit_many(playground, y_test, names)
    finished = playground.wait_for(*names, timeout=600)
    assert all(s["status"]["phase"] == "Evaluated" for s in finished), [s["status"] for s in finished][:3]
    assert sorted(s["status"]["version"] for s in finished) == list(range(1, 101))
    board = wait_for(lambda: len(playground.get()["status"].get("leaderboard", [])) == 100 and playground.get(),
                     timeout=60, what="a leaderboard with 100 rows")
    assert board["status"]["submissionCount"] == 100
    assert len(_jobs(cluster)) == 100  # one score Job each, never a duplicate


def test_operator_killed_mid_evaluation_resumes_without_duplicates(cluster, experiment):
    playground, y_test = experiment
    names = [f"r{index:02d}" for index in range(12)]
    _submit_many(playground, y_test, names)
    wait_for(lambda: any((playground.submission(n).get("status") or {}).get("phase") == "Evaluating" for n in names),
             what="an evaluation in progress")
    cluster.stop_operator(kill=True)
    time.sleep(1.0)
    cluster.start_operator()
    finished = playground.wait_for(*names, timeout=300)
    assert all(s["status"]["phase"] == "Evaluated" for s in finished)
    assert sorted(s["status"]["version"] for s in finished) == list(range(1, 13))
    job_names = [job["metadata"]["name"] for job in _jobs(cluster)]
    assert sorted(job_names) == sorted(f"{name}-score" for name in names)
