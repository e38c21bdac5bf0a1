"""Small real models of every framework, trained once per session on scikit-learn's bundled data.

Heavy frameworks are imported inside the fixtures, so a test that needs only scikit-learn never
pays for TensorFlow or torch. Artifacts are saved once per session and shared read-only.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


@dataclass(frozen=True)
class Trained:
    """A fitted model, the data it was fitted on, and its saved artifact."""

    framework: str
    model: Any
    features: Any  # what the model (or its preprocessor) takes
    labels: np.ndarray
    artifact: Path
    class_labels: list[Any] | None = None


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()


@pytest.fixture(scope="session")
def iris_array(iris: tuple[pd.DataFrame, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    features, labels = iris
    return features.to_numpy(np.float32), labels


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


def _save(model: Any, path: Path, **kwargs: Any) -> Path:
    from podium.artifacts import save_submission

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_submission(model, path, **kwargs)
    return path


@pytest.fixture(scope="session")
def sklearn_clf(iris: tuple[pd.DataFrame, np.ndarray], artifacts: Path) -> Trained:
    """A Pipeline fitted on a DataFrame with string labels: names and label order both matter."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = iris
    names = np.asarray(IRIS_CLASSES)[labels]
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.5, max_iter=500))]).fit(
        features, names
    )
    artifact = _save(model, artifacts / "sklearn", example_data=features)
    return Trained("sklearn", model, features, names, artifact, list(model.classes_))


@pytest.fixture(scope="session")
def sklearn_reg(artifacts: Path) -> Trained:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    features, target = load_diabetes(return_X_y=True)
    model = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(features, target)
    artifact = _save(model, artifacts / "sklearn-reg", example_data=features)
    return Trained("sklearn", model, features, target, artifact)


def _wine_net(n_in: int, n_out: int) -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(n_in, 32),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(32, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, n_out),
    )


@pytest.fixture(scope="session")
def wine() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    features, labels = load_wine(return_X_y=True)
    scaled = (features - features.mean(axis=0)) / features.std(axis=0)
    return scaled.astype(np.float32), labels


@pytest.fixture(scope="session")
def torch_clf(wine: tuple[np.ndarray, np.ndarray], artifacts: Path) -> Trained:
    """A torch classifier emitting logits over three wine cultivars."""
    import torch

    torch.manual_seed(0)
    features, labels = wine
    model = _wine_net(features.shape[1], 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    model.eval()
    classes = ["cultivar_a", "cultivar_b", "cultivar_c"]
    artifact = _save(model, artifacts / "torch", example_data=features, class_labels=classes)
    return Trained("pytorch", model, features, labels, artifact, classes)


@pytest.fixture(scope="session")
def keras_clf(iris_array: tuple[np.ndarray, np.ndarray], artifacts: Path) -> Trained:
    import keras

    keras.utils.set_random_seed(0)
    features, labels = iris_array
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(features, labels, epochs=4, batch_size=32, verbose=0)
    artifact = _save(model, artifacts / "keras", example_data=features, class_labels=IRIS_CLASSES)
    return Trained("keras", model, features, labels, artifact, IRIS_CLASSES)


@pytest.fixture(scope="session")
def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    return features.astype(np.float32), labels


@pytest.fixture(scope="session")
def onnx_clf(breast_cancer: tuple[np.ndarray, np.ndarray], artifacts: Path) -> Trained:
    """An ONNX ModelProto converted from a fitted scikit-learn binary classifier."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = breast_cancer
    fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, labels)
    proto = convert_sklearn(
        fitted,
        initial_types=[("input", FloatTensorType([None, features.shape[1]]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={"zipmap": False},
    )
    artifact = _save(proto, artifacts / "onnx", example_data=features, class_labels=[0, 1])
    return Trained("onnx", proto, features, labels, artifact, [0, 1])


@pytest.fixture(params=["sklearn", "pytorch", "keras", "onnx"])
def trained(request: pytest.FixtureRequest) -> Trained:
    """Each framework's classifier in turn."""
    name = {"sklearn": "sklearn_clf", "pytorch": "torch_clf", "keras": "keras_clf", "onnx": "onnx_clf"}[
        request.param
    ]
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def native_proba() -> Any:
    """The framework's own in-memory class probabilities, computed without Podium."""
    return _native_proba


def _native_proba(trained: Trained) -> np.ndarray:
    if trained.framework == "sklearn":
        return trained.model.predict_proba(trained.features)
    if trained.framework == "pytorch":
        import torch

        with torch.no_grad():
            return torch.softmax(trained.model(torch.from_numpy(trained.features)), dim=1).numpy()
    if trained.framework == "keras":
        return np.asarray(trained.model.predict_on_batch(trained.features))
    import onnxruntime

    session = onnxruntime.InferenceSession(
        trained.model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"input": trained.features})[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto's server) on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from tests.helpers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
