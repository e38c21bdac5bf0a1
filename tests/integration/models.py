"""Small real models of each framework, trained on iris, plus deliberately broken and malicious ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from tests.integration.holdouts import IRIS_CLASSES


def sklearn_model(X: pd.DataFrame, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def onnx_model(X: pd.DataFrame, y: np.ndarray):
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X.to_numpy(np.float32), y)
    return to_onnx(tree, X.to_numpy(np.float32)[:1], options={id(tree): {"zipmap": False}})


def torch_model(X: pd.DataFrame, y: np.ndarray):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs = torch.tensor(X.to_numpy(np.float32))
    targets = torch.tensor([IRIS_CLASSES.index(label) for label in y])
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    return net.eval()


def keras_model(X: pd.DataFrame, y: np.ndarray):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(X.to_numpy(np.float32), np.array([IRIS_CLASSES.index(label) for label in y]), epochs=40, verbose=0)
    return model


class Crashing(ClassifierMixin, BaseEstimator):
    """Fits like an estimator, fails at prediction time the way buggy user code does."""

    classes_ = np.array(IRIS_CLASSES, dtype=object)

    def fit(self, X, y):
        return self

    def predict(self, X):
        raise RuntimeError("feature 'petal width' was never engineered")


class Sleeper(Crashing):
    def predict(self, X):
        import time

        time.sleep(600)
        return np.full(len(X), "setosa", dtype=object)


class MemoryHog(Crashing):
    def predict(self, X):
        blocks = [np.ones(256 * 1024 * 1024 // 8) for _ in range(64)]  # 16 GiB, page by page
        return np.full(len(X) + len(blocks), "setosa", dtype=object)[: len(X)]


class Snoop(Crashing):
    """A malicious model: looks for labels, credentials, a token and the network, then predicts 'setosa'."""

    def __init__(self, target: str) -> None:
        self.target = target  # host:port of a server it should not reach (the object store)

    def predict(self, X):
        import glob
        import json
        import os
        import socket

        seen: dict[str, object] = {"env": sorted(k for k in os.environ if "AWS" in k or "SECRET" in k or "KUBE" in k)}
        token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
        seen["token"] = os.path.exists(token)
        readable = []
        for pattern in ("/tmp/**/labels*", "/tmp/**/*.csv", "/tmp/**/scores*.json", "/tmp/**/kubeconfig",
                        "/root/**/kubeconfig"):
            for path in glob.glob(pattern, recursive=True):
                try:
                    with open(path, "rb") as handle:
                        handle.read(16)
                    readable.append(path)
                except OSError:
                    pass
        seen["readable"] = readable
        host, port = self.target.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            seen["network"] = True
        except OSError:
            seen["network"] = False
        # Its report leaves the sandbox the one way a pod's words do: the termination message (the volume it
        # could also write is deleted once the evaluation is over).
        with open(os.environ.get("PODIUM_TERMINATION_LOG", "/dev/termination-log"), "w") as handle:
            json.dump(seen, handle)
        return np.full(len(X), "setosa", dtype=object)
