"""The SDK's and CLI's serving verbs against the whole local cluster: the real operator builds the
InferenceService, local mode's serving controller runs the real predictor behind a router.

Needs local mode's serving controller (operator/podium_operator/local/serving/): without it the cluster
serves no InferenceServices and these tests skip, saying so.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from podium import deployments
from podium.deployments import DeploymentError
from tests.integration.holdouts import IRIS_CLASSES, iris_split, open_iris_playground

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

FAST_CANARY = {"steps": [50], "stepIntervalSeconds": 2, "analysis": {"minRequests": 0}}


@pytest.fixture
def served(cluster, custom_objects):
    """The iris playground with two evaluated models (leaderboard versions of logreg and tree)."""
    from kubernetes.client import ApiException

    try:
        custom_objects.list_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices")
    except ApiException as error:
        if error.status == 404:
            pytest.skip("this local cluster serves no InferenceServices (local mode's serving controller is missing)")
        raise
    playground, _, _ = open_iris_playground(custom_objects)
    X_train, X_test, y_train, _ = iris_split()
    playground.submit_model(LogisticRegression(max_iter=500).fit(X_train, y_train), name="logreg",
                            example_data=X_train)
    playground.submit_model(DecisionTreeClassifier(random_state=0).fit(X_train, y_train), name="tree",
                            example_data=X_train)
    versions = {s["metadata"]["name"]: s["status"]["version"] for s in playground.wait_for("logreg", "tree")}
    return playground, versions, X_test


def test_deploy_predict_swap_and_status(served, cluster):
    playground, versions, X_test = served
    shown = playground.deploy_model(versions["logreg"], rollout=FAST_CANARY, timeout=180)
    assert shown.phase == "Ready" and shown.url and shown.stable["submission"] == "logreg"

    labels = playground.predict(X_test[:5])
    assert len(labels) == 5 and set(labels) <= set(IRIS_CLASSES)
    same, frame = playground.predict(X_test[:5].to_numpy(), protocol="v2", probabilities=True)
    assert same == labels and list(frame.columns) == IRIS_CLASSES
    assert np.allclose(frame.sum(axis=1), 1.0)

    with pytest.raises(DeploymentError, match="answered 400") as refused:
        playground.predict([[1.0, 2.0]])  # two features where the model takes four
    assert "\n" not in str(refused.value)

    swapped = playground.update_runtime_model(versions["tree"], timeout=180)
    assert swapped.stable["submission"] == "tree" and swapped.canary is None
    assert any(event["action"] == "Promoted" for event in swapped.history)

    playground.shadow(versions["logreg"])  # mirrored, compared; the operator reports it in status.shadow
    assert deployments.read(playground)["spec"]["shadow"] == {"version": versions["logreg"]}
    playground.shadow(None)
    assert "shadow" not in deployments.read(playground)["spec"]

    status = subprocess.run([sys.executable, "-m", "podium.cli", "rollout", "status", "iris", "-o", "json"],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["stable"]["submission"] == "tree"


def test_the_cli_deploys_and_predicts_from_a_csv_file(served, tmp_path):
    _, versions, X_test = served
    rows = tmp_path / "rows.csv"
    X_test[:3].to_csv(rows, index=False)

    def podium(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "podium.cli", *args], capture_output=True, text=True,
                              timeout=240)

    deployed = podium("deploy", "iris", "--version", str(versions["logreg"]), "-o", "json")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["phase"] == "Ready"
    predicted = podium("predict", "iris", str(rows), "--probabilities", "-o", "json")
    assert predicted.returncode == 0, predicted.stderr
    records = json.loads(predicted.stdout)
    assert len(records) == 3 and all(set(r) == {"label", *IRIS_CLASSES} for r in records)
