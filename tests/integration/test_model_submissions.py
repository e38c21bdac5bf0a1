"""Model submissions of every framework, broken and malicious ones, through stage → predict → score Jobs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from podium.client import ModelPlayground
from podium_operator.local.sandbox.confiner import sandbox_support
from tests.integration import models
from tests.integration.holdouts import iris_playground, iris_split, upload_holdout

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


def _playground(custom_objects, name: str, *, memory: str = "8Gi", timeout: int = 240) -> ModelPlayground:
    X_train, X_test, y_train, y_test = iris_split()
    holdout = upload_holdout(X_test, y_test, f"s3://podium/holdouts/{name}")
    custom_objects.create_namespaced_custom_object(*PG, iris_playground(
        name, *holdout, evaluation={"timeoutSeconds": timeout, "resources": {"cpu": "1", "memory": memory}}))
    playground = ModelPlayground(name)
    playground.wait_ready()
    return playground


@pytest.fixture
def iris(cluster, custom_objects):
    return _playground(custom_objects, "iris"), iris_split()


def _accuracy(model_predictions, y_test) -> float:
    return float(np.mean(np.asarray(model_predictions, dtype=object) == np.asarray(y_test, dtype=object)))


def test_every_framework_is_scored_like_its_own_predictions(iris):
    playground, (X_train, X_test, y_train, y_test) = iris
    sklearn = models.sklearn_model(X_train, y_train)
    torch_net = models.torch_model(X_train, y_train)
    keras_net = models.keras_model(X_train, y_train)
    onnx_proto = models.onnx_model(X_train, y_train)
    playground.submit_model(sklearn, name="sk", example_data=X_train)
    playground.submit_model(torch_net, name="pt", example_data=X_train.to_numpy(np.float32))
    playground.submit_model(keras_net, name="ks", example_data=X_train.to_numpy(np.float32))
    playground.submit_model(onnx_proto, name="ox", example_data=X_train.to_numpy(np.float32))
    finished = {s["metadata"]["name"]: s["status"] for s in playground.wait_for("sk", "pt", "ks", "ox", timeout=600)}
    for name, status in finished.items():
        assert status["phase"] == "Evaluated", f"{name}: {status.get('message')}"
        assert status["verified"] is True
    import torch

    with torch.no_grad():
        torch_labels = np.array(models.IRIS_CLASSES)[torch_net(torch.tensor(X_test.to_numpy(np.float32))).argmax(1)]
    keras_labels = np.array(models.IRIS_CLASSES)[keras_net.predict(X_test.to_numpy(np.float32), verbose=0).argmax(1)]
    assert finished["sk"]["score"] == pytest.approx(_accuracy(sklearn.predict(X_test), y_test))
    assert finished["pt"]["score"] == pytest.approx(_accuracy(torch_labels, y_test))
    assert finished["ks"]["score"] == pytest.approx(_accuracy(keras_labels, y_test))
    assert {s["framework"] for s in finished.values()} == {"sklearn", "pytorch", "keras", "onnx"}
    assert finished["pt"]["metadata"]["n_params"] == sum(p.numel() for p in torch_net.parameters())
    assert "roc_auc" in finished["sk"]["metrics"] and "log_loss" in finished["sk"]["metrics"]


def shifted(features):
    """A preprocessor submitted on its own (pickled by value: the job cannot import this module)."""
    return np.asarray(features, dtype=float) * 2.0 - 10.0


def test_model_with_a_separately_submitted_preprocessor(iris):
    from sklearn.linear_model import LogisticRegression

    playground, (X_train, X_test, y_train, y_test) = iris
    model = LogisticRegression(max_iter=500).fit(shifted(X_train), y_train)
    uri = playground.upload_preprocessor(shifted, name="shift")
    playground.submit_model(model, name="lr", preprocessor_uri=uri)
    (done,) = playground.wait_for("lr", timeout=300)
    assert done["status"]["phase"] == "Evaluated", done["status"].get("message")
    assert done["spec"]["model"]["preprocessorUri"] == uri
    assert done["status"]["metadata"]["has_preprocessor"] is True
    assert done["status"]["score"] == pytest.approx(_accuracy(model.predict(shifted(X_test)), y_test))
    assert _accuracy(model.predict(X_test.to_numpy(float)), y_test) < done["status"]["score"]  # it mattered


def test_crashing_model_fails_with_its_own_message_and_operator_carries_on(iris, core):
    playground, (X_train, _, y_train, y_test) = iris
    playground.submit_model(models.Crashing(), name="crash", example_data=None)
    (crash,) = playground.wait_for("crash", timeout=300)
    assert crash["status"]["phase"] == "Failed"
    assert "running your model" in crash["status"]["message"]
    assert "petal width" in crash["status"]["message"]
    # Its Jobs are over: the volume holding the staged model and features is released.
    assert [c.metadata.name for c in core.list_namespaced_persistent_volume_claim("default").items] == []
    playground.submit_predictions(np.asarray(y_test, dtype=object), name="after")
    (after,) = playground.wait_for("after", timeout=120)
    assert after["status"]["phase"] == "Evaluated"


def test_model_sleeping_past_the_deadline_is_killed(cluster, custom_objects):
    playground = _playground(custom_objects, "slow", timeout=15)
    playground.submit_model(models.Sleeper(), name="sleepy")
    (sleepy,) = playground.wait_for("sleepy", timeout=300)
    assert sleepy["status"]["phase"] == "Failed"
    assert "Timed out" in sleepy["status"]["message"] and "15s" in sleepy["status"]["message"]


def test_model_allocating_too_much_memory_fails_as_out_of_memory(cluster, custom_objects):
    playground = _playground(custom_objects, "small", memory="3Gi")
    playground.submit_model(models.MemoryHog(), name="hog")
    (hog,) = playground.wait_for("hog", timeout=300)
    assert hog["status"]["phase"] == "Failed"
    assert "Out of memory" in hog["status"]["message"], hog["status"]["message"]


def test_malicious_model_sees_no_labels_credentials_token_or_network(iris, cluster, core):
    support = sandbox_support()
    playground, (_, _, _, y_test) = iris
    assert cluster.store is not None
    target = cluster.store.endpoint.removeprefix("http://")
    # Labels are on disk somewhere the runner can read: a previous score step's working copy.
    playground.submit_predictions(np.asarray(y_test, dtype=object), name="warmup")
    playground.wait_for("warmup", timeout=120)
    playground.submit_model(models.Snoop(target), name="snoop")
    (snoop,) = playground.wait_for("snoop", timeout=300)
    assert snoop["status"]["phase"] == "Evaluated", snoop["status"].get("message")
    (pod,) = core.list_namespaced_pod("default", label_selector="job-name=snoop-predict").items
    report = pod.status.container_statuses[0].state.terminated.message
    assert report, "the malicious model's report is missing"
    seen = json.loads(report)
    assert seen["env"] == []  # no credentials of any kind in its environment
    assert seen["token"] is False  # no service-account token
    # Its score comes only from what it predicted: everything 'setosa'.
    assert snoop["status"]["score"] == pytest.approx(_accuracy(["setosa"] * len(y_test), y_test))
    if support.get("network"):
        pytest.skip(f"network isolation not enforceable here: {support['network']}")
    assert seen["network"] is False
    if support.get("mounts"):
        pytest.skip(f"filesystem isolation not enforceable here: {support['mounts']}")
    # It may read the features staged for it and Podium's own code (mounted to run it: sources and their
    # compiled .pyc, which may live under /tmp in a checkout there), nothing else: no holdout labels,
    # scores or cluster credentials.
    import podium
    import podium_operator

    code = tuple(str(Path(package.__file__).parent) + "/" for package in (podium, podium_operator))
    assert [path for path in seen["readable"]
            if not path.endswith("/features.csv") and not (path.startswith(code) and path.endswith((".py", ".pyc")))
            ] == []
