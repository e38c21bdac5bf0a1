"""The Podium demo: a local cluster, the real operator, kubectl and the SDK — no Kubernetes, Docker or network.

Run with `make demo`. It creates a classification playground from scikit-learn's wine data, submits
four models (scikit-learn, Keras, PyTorch, ONNX) and one predictions-only entry to the competition,
prints the public leaderboard, closes the competition and prints the private leaderboard. Then it
serves the best model (a ModelDeployment: a KServe InferenceService run by the local serving
controller), sends it predictions, swaps in another version through canary steps under live traffic
(gated by metrics from a real Prometheus), and deploys a deliberately broken version, which is rolled
back automatically.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from podium.client import ModelPlayground
from podium.deployments import DeploymentError, DeploymentView
from podium_operator.local.cluster import LocalCluster

EXAMPLES = Path(__file__).resolve().parent
CLASSES = ["barolo", "grignolino", "barbera"]
# TensorFlow's start-up lines (absl, oneDNN) are not the demo's: silenced before Keras is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def kubectl(cluster: LocalCluster, *args: str) -> str:
    result = subprocess.run(["kubectl", *args], env=cluster.environment(), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def wine() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    data = load_wine(as_frame=True)
    features = data.frame.drop(columns="target")
    labels = np.array(CLASSES, dtype=object)[data.target.to_numpy()]
    return train_test_split(features, labels, test_size=0.4, random_state=0, stratify=labels)


def sklearn_model(X: pd.DataFrame, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


def onnx_model(X: pd.DataFrame, y: np.ndarray):
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X.to_numpy(np.float32), y)
    return to_onnx(forest, X.to_numpy(np.float32)[:1], options={id(forest): {"zipmap": False}})


def keras_model(X: np.ndarray, y: np.ndarray):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(len(CLASSES), activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, np.array([CLASSES.index(label) for label in y]), epochs=60, verbose=0)
    return model


def torch_model(X: np.ndarray, y: np.ndarray):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, len(CLASSES)))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs = torch.tensor(X, dtype=torch.float32)
    targets = torch.tensor([CLASSES.index(label) for label in y])
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    return net.eval()


def standardise(train: pd.DataFrame):
    mean, std = train.mean().to_numpy(), train.std().to_numpy()

    def scale(frame):
        return ((np.asarray(frame, dtype=np.float64) - mean) / std).astype(np.float32)

    return scale


def fragile_model(X: pd.DataFrame, y: np.ndarray):
    """Scores like a good model on the holdout (one large batch) but fails on the small requests a live
    service gets: the evaluation cannot tell, the canary analysis can. (A subclass of its own, so that no ONNX
    converter knows it: the predictor runs it natively, as submitted.)"""
    from sklearn.linear_model import LogisticRegression

    class FragileLogReg(LogisticRegression):
        def predict(self, X):
            if len(X) < 16:
                raise RuntimeError("fragile: only works on batches of 16 rows or more")
            return super().predict(X)

    return FragileLogReg(max_iter=5000).fit(X, y)


class Traffic:
    """A client sending one small prediction request after another, counting answers by outcome."""

    def __init__(self, playground: ModelPlayground, rows: pd.DataFrame) -> None:
        self.playground, self.rows = playground, rows
        self.counts: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 600  # bounded, whatever happens
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.playground.predict(self.rows)
                self.counts["ok"] += 1
            except Exception as error:  # counted, and shown by the demo
                self.counts["failed: " + str(error).split(":")[0][:60]] += 1
            time.sleep(0.01)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def show_rollout(view: DeploymentView) -> None:
    traffic = ", ".join(f"{t['submission']} {t['percent']}%" for t in view.traffic) if view.traffic else "-"
    print(f"    {view.phase or 'Pending':<12} traffic: {traffic}", flush=True)


def show_history(view: DeploymentView) -> None:
    for event in view.history:
        values = event.get("values") or {}
        decided = ", ".join(f"{k}={values[k]:.3g}" for k in ("errorRate", "latencyRatio", "requests")
                            if values.get(k) is not None)
        print(f"    {event['action']:<14} {event['submission']:<16} {event.get('reason', '')}"
              + (f"  [{decided}]" if decided else ""))


def show_leaderboard(board: pd.DataFrame, title: str) -> None:
    columns = [c for c in ("rank", "version", "submission", "framework", "verified", "accuracy", "f1_macro",
                           "log_loss") if c in board]
    print(f"    {title}")
    print("    " + board[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}").replace("\n", "\n    "))


def serve(cluster: LocalCluster, playground: ModelPlayground, X_test: pd.DataFrame) -> None:
    board = playground.get_leaderboard()
    models = board[board["framework"].notna() & (board["submission"] != "fragile-logreg")]
    best, runner_up = int(models.iloc[0]["version"]), int(models.iloc[1]["version"])
    fragile = int(board[board["submission"] == "fragile-logreg"].iloc[0]["version"])
    rollout = {"steps": [20, 50], "stepIntervalSeconds": 4,
               "analysis": {"maxErrorRate": 0.02, "maxLatencyRatio": 3.0, "minRequests": 10}}

    step(f"Serving the leaderboard's best model (version {best}) as a KServe InferenceService")
    playground.deploy_model(best, rollout=rollout, runtime={"deploymentMode": "Standard"})
    print(kubectl(cluster, "get", "mdep,isvc"), end="")
    labels, proba = playground.predict(X_test.head(3), probabilities=True)
    print(f"    predict(3 rows) -> {labels}")
    print("    " + proba.round(3).to_string().replace("\n", "\n    "))

    with Traffic(playground, X_test.head(2)) as traffic:
        step(f"Swapping in version {models.iloc[1]['submission']} (v{runner_up}): canary steps under live traffic")
        done = playground.update_runtime_model(runner_up, on_change=show_rollout, progress=False)
        show_history(done)
        step(f"Deploying version {fragile} (fragile-logreg): the analysis sees its errors and rolls it back")
        try:
            playground.update_runtime_model(fragile, on_change=show_rollout, progress=False)
        except DeploymentError as error:
            print(f"    {error}")
        show_history(playground.get_deployment())
    print(f"    live requests during both swaps: {dict(traffic.counts)}")
    print(kubectl(cluster, "get", "mdep"), end="")


def main() -> None:
    warnings.filterwarnings("ignore")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="podium-demo-") as state:
        step("Starting the local cluster (API emulator, object store, job runner, operator)")
        with LocalCluster(Path(state)) as cluster:
            for key, value in cluster.environment().items():
                if key == "KUBECONFIG" or key.startswith(("AWS_", "PODIUM_")):
                    os.environ[key] = value
            print(f"    kubeconfig {cluster.kubeconfig}")

            step("Creating the 'wine' playground (holdout uploaded to the object store)")
            X_train, X_test, y_train, y_test = wine()
            playground = ModelPlayground.create(
                "wine", X_test, y_test, task="classification", primary_metric="accuracy", class_labels=CLASSES,
                competition={"privateFraction": 0.5, "seed": 1, "quotaPerDay": 10},
                evaluation={"timeoutSeconds": 300, "resources": {"cpu": "1", "memory": "8Gi"}},
            )
            playground.wait_ready()
            print(kubectl(cluster, "get", "pg", "wine"), end="")

            step("Training and submitting four models and one predictions-only entry")
            scale = standardise(X_train)
            entries = {
                "sklearn-logreg": lambda: playground.submit_model(
                    sklearn_model(X_train, y_train), name="sklearn-logreg", example_data=X_train, track="competition"),
                "onnx-forest": lambda: playground.submit_model(
                    onnx_model(X_train, y_train), name="onnx-forest", example_data=X_train.to_numpy(np.float32),
                    track="competition"),
                "keras-mlp": lambda: playground.submit_model(
                    keras_model(scale(X_train), y_train), name="keras-mlp", preprocessor=scale,
                    example_data=X_train, track="competition"),
                "torch-mlp": lambda: playground.submit_model(
                    torch_model(scale(X_train), y_train), name="torch-mlp", preprocessor=scale,
                    example_data=X_train, track="competition"),
                "fragile-logreg": lambda: playground.submit_model(
                    fragile_model(X_train, y_train), name="fragile-logreg", example_data=X_train,
                    track="competition", description="good on the holdout, fails on small live requests"),
                "predictions-only": lambda: playground.submit_predictions(
                    sklearn_model(X_train, y_train).predict(X_test), name="predictions-only", track="competition"),
            }
            for name, submit in entries.items():
                submit()
                print(f"    submitted {name}")
            finished = playground.wait_for(*entries, timeout=900)  # evaluated, and on the leaderboard
            for submission in finished:
                status = submission["status"]
                if status["phase"] != "Evaluated":
                    print(f"    {submission['metadata']['name']}: {status['phase']}: {status.get('message')}")

            step("kubectl get submissions")
            print(kubectl(cluster, "get", "sub", "-o", "wide"), end="")
            step("Public leaderboard")
            show_leaderboard(playground.get_leaderboard(), "public split")

            step("Closing the competition: the private leaderboard is published")
            playground.close_competition()  # waits until it is
            show_leaderboard(playground.get_leaderboard(private=True), "private split")
            serve(cluster, playground, X_test)
            step("Shutting down")
    print(f"    done in {time.monotonic() - started:.0f}s")
    step("Next")
    print("    make shell                 # a shell with .venv active: podium on PATH (or: source .venv/bin/activate)")
    print("    podium local up            # a local cluster that stays up; it prints what to run next")
    print("    README.md, 'Python SDK'    # the SDK example, runnable against it as written")


if __name__ == "__main__":
    sys.exit(main())
