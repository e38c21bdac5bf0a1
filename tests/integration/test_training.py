"""Training submissions through the real operator in local mode: the platform trains (CPU here), then evaluates."""

from __future__ import annotations

import numpy as np
import pytest

from podium import storage
from podium.client import ModelPlayground
from podium.errors import InvalidConfig
from tests.training_data import few_shot_task

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

TINY_MAML = {"iterations": 4, "metaBatch": 2, "innerSteps": 1, "testSteps": 5, "hidden": 8, "kShot": 5,
             "queries": 2, "validateEvery": 2, "validationEpisodes": 4, "checkpointEvery": 2}


def test_a_maml_submission_trains_on_cpu_is_evaluated_and_shows_its_progress(cluster, core, tmp_path) -> None:
    support_x, support_y, holdout_x, holdout_y, classes = few_shot_task()
    playground = ModelPlayground.create(
        "fewshot", holdout_x, holdout_y, task="classification", primary_metric="accuracy", class_labels=classes,
        training_data=(support_x, support_y), inputType="image",
        evaluation={"timeoutSeconds": 300, "resources": {"cpu": "1", "memory": "8Gi"}})
    playground.wait_ready(timeout=120)

    with pytest.raises(InvalidConfig, match=r"hyperparameters\.kShot"):  # refused before anything exists
        playground.submit_training("bad", "maml", {"kShot": 0})
    playground.submit_training("maml", "maml", TINY_MAML, resources={"memory": "8Gi"})
    (done,) = playground.wait_for("maml", timeout=600)
    status = done["status"]
    assert status["phase"] == "Evaluated", status.get("message")
    assert status["framework"] == "pytorch" and status["verified"] is True
    assert 0.0 <= status["score"] <= 1.0
    training = status["training"]
    assert (training["iteration"], training["iterations"], training["algorithm"]) == (4, 4, "maml")
    assert training["device"] == "cpu" and "loss" in training and "validation" in training
    assert training["progress"].startswith("iter 4/4 loss ")
    assert status["jobs"]["training"] == "maml-train"

    pod = core.list_namespaced_pod("default", label_selector="job-name=maml-train").items[0]
    limits = pod.spec.containers[0].resources.limits
    assert "nvidia.com/gpu" not in limits and not pod.spec.node_selector  # this node has no GPU pool

    # The artifact evaluated is the one the training Job wrote below the operator's own prefix.
    trained = [uri for uri in storage.list_uris("s3://podium/podium-private/default/fewshot/")
               if uri.endswith("/model.tar.gz")]
    assert len(trained) == 1 and "/training/" in trained[0]
    kept = storage.list_uris(trained[0].rsplit("/", 1)[0])
    assert any(uri.endswith("/checkpoint") for uri in kept)
    init = next(uri for uri in kept if uri.endswith("/initialisation.tar.gz"))  # the learned initialisation:
    from podium.artifacts.archive import unpack
    from podium.metalearn.artifact import load_initialisation

    local = unpack(storage.download(init, tmp_path / "init.tar.gz"), tmp_path / "init")
    learner = load_initialisation(local)  # adapt(support_set) on another task
    import torch

    adapted = learner.adapt(torch.from_numpy(support_x.reshape(-1, 1, 8, 8).astype("float32")),
                            torch.arange(len(support_y)) % 5)
    assert set(adapted) == {name for name, _ in learner.net.named_parameters()}

    # The trained model is served like any other: KServe's model server, the playground's class labels.
    playground.deploy_model(status["version"], timeout=240)
    labels = playground.predict(holdout_x[:6])
    assert len(labels) == 6 and set(labels) <= set(classes)


def test_a_training_submission_needs_training_data(cluster) -> None:
    _, _, holdout_x, holdout_y, classes = few_shot_task(holdout=10)
    playground = ModelPlayground.create("nodata", holdout_x, holdout_y, task="classification",
                                        primary_metric="accuracy", class_labels=classes)
    playground.wait_ready(timeout=120)
    playground.submit_training("maml", "maml", TINY_MAML)
    (done,) = playground.wait_for("maml", timeout=120, leaderboard=False)
    assert done["status"]["phase"] == "Rejected"
    assert done["status"]["conditions"][0]["reason"] == "NoTrainingData"
    assert done["status"]["message"].startswith("training.data: ")


def test_a_training_job_that_cannot_train_fails_once_saying_why(cluster) -> None:
    support_x, support_y, holdout_x, holdout_y, classes = few_shot_task(holdout=10)
    playground = ModelPlayground.create(
        "wide", holdout_x, holdout_y, task="classification", primary_metric="accuracy", class_labels=classes,
        training_data=(np.hstack([support_x, support_x]), support_y))  # 128 columns: not 8x8 images
    playground.wait_ready(timeout=120)
    playground.submit_training("maml", "maml", TINY_MAML, resources={"memory": "8Gi"})
    (done,) = playground.wait_for("maml", timeout=300, leaderboard=False)
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["conditions"][0]["reason"] == "TrainingFailed"
    assert "data.features" in done["status"]["message"] and "64" in done["status"]["message"]


def _tabular(loader, seed: int = 0):
    from sklearn.model_selection import train_test_split

    data = loader()
    labels = np.array([f"c{int(t)}" for t in data.target])
    return train_test_split(data.data, labels, test_size=0.4, random_state=seed, stratify=labels)


def test_recommendations_come_from_the_most_similar_profiled_playground_and_become_a_submission(cluster) -> None:
    from sklearn.datasets import load_breast_cancer, load_iris, load_wine

    playgrounds = {}
    for name, loader in (("iris", load_iris), ("wine", load_wine), ("cancer", load_breast_cancer)):
        x_train, x_test, y_train, y_test = _tabular(loader)
        playgrounds[name] = ModelPlayground.create(name, x_test, y_test, task="classification",
                                                   primary_metric="accuracy", training_data=(x_train, y_train))
    for playground in playgrounds.values():
        playground.wait_ready(timeout=120)
    search = {"trials": 3, "space": {"estimators": {
        "logistic_regression": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
        "knn": {"n_neighbors": {"type": "int", "low": 1, "high": 15}}}}}
    playgrounds["iris"].submit_training("tpe", "tpe-search", search)
    (done,) = playgrounds["iris"].wait_for("tpe", timeout=300)
    assert done["status"]["phase"] == "Evaluated", done["status"].get("message")
    best = done["status"]["training"]["best"]
    assert best["estimator"] in ("logistic_regression", "knn")

    def recommended(playground: ModelPlayground):
        for _ in range(120):
            found = playground.get_recommendations()
            if found:
                return found
            import time
            time.sleep(1)
        raise AssertionError(f"no recommendations for {playground.name}: {playground.get().get('status')}")

    for name in ("wine", "cancer"):  # each is profiled, and iris is the only playground with a trained config
        (rec,) = recommended(playgrounds[name])
        assert rec.source_playground == "iris" and rec.version == 1 and rec.metric == "accuracy"
        assert rec.score == pytest.approx(done["status"]["score"])
        assert rec.training["algorithm"] == "tpe-search" and rec.training["hyperparameters"]["trials"] == 1
        assert rec.training["hyperparameters"]["space"] == {"estimators": {best["estimator"]: best["params"]}}
    assert playgrounds["wine"].get()["status"]["metaFeatures"]["count"] > 20

    playgrounds["wine"].submit_recommendation(1, name="from-iris")  # one call
    (again,) = playgrounds["wine"].wait_for("from-iris", timeout=300)
    assert again["status"]["phase"] == "Evaluated", again["status"].get("message")
    assert again["status"]["training"]["best"] == best  # the one configuration, trained on wine's data
