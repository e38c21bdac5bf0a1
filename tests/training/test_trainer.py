"""The training Job's entry point as the Job runs it: a process with only presigned URLs to a real object store.

A pod killed mid-training is replaced by one that resumes from the last checkpoint (meta-learning and
tpe-search); bad inputs fail with exit code 1 and a message naming the field.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from podium import storage
from podium.data import write_table
from podium.errors import NotFound
from podium.training.wire import TrainArgs
from podium_operator.local.objectstore import ObjectStore

pytestmark = pytest.mark.slow  # a few trainer processes (torch and optuna imports)


@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    with ObjectStore() as running:
        yield running


@pytest.fixture
def bucket(store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{store.bucket}/t-{tmp_path.name}/"


def _urls(prefix: str, data: dict[str, Path]) -> dict[str, str]:
    """Upload the data; presign exactly what the operator presigns (see reconcile.training_jobs.object_access)."""
    expires = datetime.timedelta(hours=1)
    urls = {}
    for name, path in data.items():
        storage.upload(path, f"{prefix}{path.name}")
        urls[name] = storage.presign(f"{prefix}{path.name}", expires=expires)
    for name, key in (("artifact", "model.tar.gz"), ("progress", "progress.json"), ("history", "history.json"),
                      ("checkpoint_put", "checkpoint")):
        urls[name] = storage.presign(f"{prefix}{key}", method="PUT", expires=expires)
    urls["checkpoint"] = storage.presign(f"{prefix}checkpoint", expires=expires)
    return urls


def _argv(urls: dict[str, str], **fields) -> list[str]:
    return [sys.executable, "-m", "podium.training", *TrainArgs(**urls, **fields).to_argv()]


def _env() -> dict[str, str]:  # what the Job's container has: no credentials at all
    return {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PODIUM_S3"))}


def _sine(tmp_path: Path) -> dict[str, Path]:
    x = np.linspace(-5, 5, 10).reshape(-1, 1)
    return {"features": write_table(x, tmp_path / "x.csv"), "labels": write_table(2 * np.sin(x[:, 0] + 1), tmp_path / "y.csv")}


def _kill_after_first_checkpoint(argv: list[str], prefix: str) -> str:
    process = subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not storage.exists(f"{prefix}checkpoint"):
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # as a node loss would
    out, _ = process.communicate(timeout=30)
    assert not storage.exists(f"{prefix}model.tar.gz")
    return out


def test_a_killed_meta_learning_job_resumes_from_its_checkpoint(bucket: str, tmp_path: Path) -> None:
    urls = _urls(bucket, _sine(tmp_path))
    settings = {"metaDataset": "sinusoid", "iterations": 400, "metaBatch": 4, "kShot": 10, "queries": 10,
                "innerSteps": 1, "checkpointEvery": 20, "validateEvery": 100, "validationEpisodes": 10}
    argv = _argv(urls, algorithm="maml", task="regression", metric="mse", hyperparameters=json.dumps(settings),
                 progress_seconds=0)
    _kill_after_first_checkpoint(argv, bucket)
    again = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    resumed = [line for line in again.stdout.splitlines() if line.startswith("resuming from the checkpoint")]
    assert resumed and int(resumed[0].split()[-1]) >= 20  # not from the start
    history = json.loads(storage.read_bytes(f"{bucket}history.json"))
    iterations = [point["iteration"] for point in history["curve"]]
    assert iterations == sorted(set(iterations)) and iterations[-1] == 400  # no iteration run twice
    progress = json.loads(storage.read_bytes(f"{bucket}progress.json"))
    assert progress["state"] == "done" and progress["iteration"] == 400
    from podium.artifacts import load_submission

    archive = tmp_path / "model.tar.gz"
    storage.download(f"{bucket}model.tar.gz", archive)
    predicted = load_submission(archive).predict(np.array([[0.0], [1.0]], dtype=np.float32))
    assert predicted.labels.shape == (2,) and np.isfinite(predicted.labels.astype(float)).all()


def test_a_killed_search_resumes_its_study(bucket: str, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    data = {"features": write_table(iris.data, tmp_path / "x.csv"),
            "labels": write_table(np.array(["a", "b", "c"])[iris.target], tmp_path / "y.csv")}
    urls = _urls(bucket, data)
    settings = {"trials": 40, "space": {"estimators": {"random_forest": {
        "n_estimators": {"type": "int", "low": 50, "high": 150}}}}}
    argv = _argv(urls, algorithm="tpe-search", task="classification", metric="accuracy", class_labels=["a", "b", "c"],
                 hyperparameters=json.dumps(settings), progress_seconds=0)
    _kill_after_first_checkpoint(argv, bucket)
    again = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    (resumed,) = [line for line in again.stdout.splitlines() if line.startswith("resuming the study")]
    done = int(resumed.split(": ")[1].split()[0])
    assert done >= 1
    history = json.loads(storage.read_bytes(f"{bucket}history.json"))
    assert len(history["trials"]) == 40 and history["best"]["estimator"] == "random_forest"


@pytest.mark.parametrize(("algorithm", "settings", "field"), [
    ("maml", {"metaDataset": "sinusoid"}, "hyperparameters.metaDataset"),  # a classification playground
    ("tpe-search", {"space": {"estimators": {"random_forest": {"n_estimatorz": 5}}}}, "n_estimatorz"),
])
def test_bad_inputs_exit_1_naming_the_field(bucket: str, tmp_path: Path, algorithm, settings, field) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    urls = _urls(bucket, {"features": write_table(iris.data, tmp_path / "x.csv"),
                          "labels": write_table(np.array(["a", "b", "c"])[iris.target], tmp_path / "y.csv")})
    log = tmp_path / "termination"
    done = subprocess.run([*_argv(urls, algorithm=algorithm, task="classification", metric="accuracy",
                                  class_labels=["a", "b", "c"], hyperparameters=json.dumps(settings)),
                           "--termination-log", str(log)], env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert field in log.read_text() and field in done.stderr
    assert json.loads(storage.read_bytes(f"{bucket}progress.json"))["state"] == "failed"
    with pytest.raises(NotFound):
        storage.read_bytes(f"{bucket}model.tar.gz")


def test_a_search_with_parallel_workers_runs_every_trial_once(bucket: str, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    iris = load_iris()
    urls = _urls(bucket, {"features": write_table(iris.data, tmp_path / "x.csv"),
                          "labels": write_table(np.array(["a", "b", "c"])[iris.target], tmp_path / "y.csv")})
    settings = {"trials": 8, "workers": 2, "space": {"estimators": {"knn": {
        "n_neighbors": {"type": "int", "low": 1, "high": 20}}}}}
    done = subprocess.run(_argv(urls, algorithm="tpe-search", task="classification", metric="accuracy",
                                class_labels=["a", "b", "c"], hyperparameters=json.dumps(settings)),
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    history = json.loads(storage.read_bytes(f"{bucket}history.json"))
    assert sorted(trial["number"] for trial in history["trials"]) == list(range(8)) and not history["errors"]


def test_a_search_over_keras_models_saves_a_plain_keras_artifact(bucket: str, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    from podium.artifacts import load_submission

    iris = load_iris()
    names = np.array(["setosa", "versicolor", "virginica"])
    urls = _urls(bucket, {"features": write_table(iris.data, tmp_path / "x.csv"),
                          "labels": write_table(names[iris.target], tmp_path / "y.csv")})
    settings = {"trials": 2, "space": {"estimators": {"keras_mlp": {
        "hidden_units": {"type": "int", "low": 8, "high": 32}, "epochs": 60, "learning_rate": 0.01}}}}
    done = subprocess.run(_argv(urls, algorithm="tpe-search", task="classification", metric="accuracy",
                                class_labels=["virginica", "setosa", "versicolor"],  # not the model's own order
                                hyperparameters=json.dumps(settings)),
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    archive = tmp_path / "model.tar.gz"
    storage.download(f"{bucket}model.tar.gz", archive)
    loaded = load_submission(archive)
    assert loaded.manifest.framework == "keras"  # no Podium class inside: any Keras runtime serves it
    predicted = loaded.predict(iris.data).labels
    assert np.mean(predicted == names[iris.target]) > 0.8  # labels by name, whatever the column order
