"""Real predictors: ``python -m podium.serving`` in a subprocess on a loopback port, artifacts saved by
``save_submission`` from small models trained on scikit-learn's bundled iris data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers import free_port
from tests.integration.models import Crashing

REPO = Path(__file__).resolve().parents[2]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
PLAYGROUND = ["virginica", "setosa", "versicolor"]  # not the model's order: answers must follow this one


@dataclass
class Server:
    """One predictor process; ``get``/``post`` return (status, parsed JSON or text)."""

    process: subprocess.Popen
    port: int
    name: str
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"content-type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload.decode()

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def v1(self, instances: Any) -> tuple[int, Any]:
        return self.request("POST", f"/v1/models/{self.name}:predict", {"instances": instances})

    def v2(self, inputs: list[dict[str, Any]]) -> tuple[int, Any]:
        return self.request("POST", f"/v2/models/{self.name}/infer", {"inputs": inputs})

    def ready(self) -> int:
        try:
            return self.get(f"/v1/models/{self.name}")[0]
        except OSError:
            return 0

    def wait(self, status: int = 200, timeout: float = 120.0) -> None:
        for _ in range(int(timeout / 0.1)):
            if self.process.poll() is not None:
                raise AssertionError(f"the predictor exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            if self.ready() == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"readiness never answered {status}: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch(model_dir: Path, log_dir: Path, *args: str, name: str = "iris", labels: list[Any] | None = None,
           env: dict[str, str] | None = None, wait: bool = True) -> Server:
    port = free_port()
    log = log_dir / f"predictor-{port}.log"
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PODIUM_SUBMISSION": "sub-a", "PODIUM_VERSION": "7",
               "PODIUM_TASK": "classification", **(env or {})}
    if labels is not None:
        environ["PODIUM_CLASS_LABELS"] = json.dumps(labels)
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "podium.serving", "--model_name", name, "--model_dir", str(model_dir),
             "--http_port", str(port), "--http_host", "127.0.0.1", *args],
            cwd=REPO, env=environ, stdout=handle, stderr=subprocess.STDOUT,
        )
    server = Server(process, port, name, log)
    if wait:
        try:
            server.wait()
        except BaseException:
            server.stop()
            raise
    return server


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, np.asarray(IRIS_CLASSES)[data.target.to_numpy()]


def save(model: Any, path: Path, **kwargs: Any) -> Path:
    from podium.artifacts import save_submission

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_submission(model, path, **kwargs)
    return path


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-artifacts")


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-logs")


@pytest.fixture(scope="session")
def sklearn_clf(iris, artifacts: Path) -> tuple[Any, Path]:
    """A Pipeline fitted on the iris DataFrame with text labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = iris
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, labels)
    return model, save(model, artifacts / "sklearn", example_data=features)


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """A preprocessor written for the example DataFrame: it needs named columns."""
    return frame.assign(sepal_ratio=frame["sepal length (cm)"] / frame["sepal width (cm)"],
                        petal_ratio=frame["petal length (cm)"] / (frame["petal width (cm)"] + 0.1))


@pytest.fixture(scope="session")
def preprocessed(iris, artifacts: Path) -> tuple[Any, Path]:
    from sklearn.ensemble import RandomForestClassifier

    features, labels = iris
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(add_ratios(features).to_numpy(), labels)
    return model, save(model, artifacts / "preprocessed", preprocessor=add_ratios, example_data=features)


@pytest.fixture(scope="session")
def crashing(iris, artifacts: Path) -> Path:
    features, labels = iris
    return save(Crashing().fit(features, labels), artifacts / "crashing", example_data=features.to_numpy())


class Gate:
    """A preprocessor whose loading waits until its gate file exists (a slow load, made deterministic)."""

    def __init__(self, gate: str):
        self.gate = gate

    def __call__(self, features: Any) -> Any:
        return features

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for _ in range(1200):  # at most 120 s
            if os.path.exists(self.gate):
                return
            time.sleep(0.1)


@pytest.fixture
def gated(iris, tmp_path: Path) -> tuple[Path, Path]:
    from sklearn.linear_model import LogisticRegression

    features, labels = iris
    gate = tmp_path / "gate"
    model = LogisticRegression(max_iter=500).fit(features.to_numpy(), labels)
    return save(model, tmp_path / "artifact", preprocessor=Gate(str(gate)), example_data=features.to_numpy()), gate


@pytest.fixture(scope="session")
def onnx_clf(iris, artifacts: Path) -> tuple[Any, Path]:
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    features, labels = iris
    values = features.to_numpy(np.float32)
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(values, labels)
    proto = to_onnx(tree, values[:1], options={id(tree): {"zipmap": False}})
    return tree, save(proto, artifacts / "onnx", example_data=values, class_labels=IRIS_CLASSES)


@pytest.fixture(scope="session")
def torch_clf(iris, artifacts: Path) -> tuple[Any, Path]:
    import torch

    features, labels = iris
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs = torch.tensor(features.to_numpy(np.float32))
    targets = torch.tensor([IRIS_CLASSES.index(label) for label in labels])
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    net.eval()
    return net, save(net, artifacts / "torch", example_data=features.to_numpy(np.float32), class_labels=IRIS_CLASSES)


@pytest.fixture(scope="session")
def keras_clf(iris, artifacts: Path) -> tuple[Any, Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    features, labels = iris
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(features.to_numpy(np.float32), np.array([IRIS_CLASSES.index(label) for label in labels]),
              epochs=30, verbose=0)
    return model, save(model, artifacts / "keras", example_data=features.to_numpy(np.float32),
                       class_labels=IRIS_CLASSES)
