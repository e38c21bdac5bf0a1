"""Every manifest in examples/ works as written in local mode: `podium local up`, then real kubectl as a new user
would run it (the data the examples name is stored by `up`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_each_example_becomes_ready_or_evaluated_or_says_why_not(tmp_path: Path) -> None:
    env = {**os.environ, "PODIUM_HOME": str(tmp_path)}
    state = tmp_path / "local"
    podium = [sys.executable, "-m", "podium.cli", "local"]
    up = subprocess.run([*podium, "up", "--state-dir", str(state)], capture_output=True, text=True, env=env,
                        timeout=180)
    kube = {**env, "KUBECONFIG": str(state / "kubeconfig")}

    def kubectl(*args: str, timeout: int = 120) -> str:
        result = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=kube, timeout=timeout + 30)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def apply(name: str) -> str:
        return kubectl("apply", "-f", str(EXAMPLES / name))

    def status(kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(kubectl("get", kind, name, "-o", "json")).get("status") or {}
        return found

    try:
        assert up.returncode == 0, up.stdout + up.stderr
        for playground in ("playground.yaml", "playground-regression.yaml"):
            assert "created" in apply(playground)
        kubectl("wait", "--for=condition=Ready", "pg/iris", "pg/diabetes", "--timeout=120s")
        for submission in ("submission-model.yaml", "submission-predictions.yaml"):
            assert "created" in apply(submission)
        kubectl("wait", "--for=jsonpath={.status.phase}=Evaluated", "sub/iris-logreg", "sub/iris-predictions",
                "--timeout=300s", timeout=300)
        model, predictions = status("sub", "iris-logreg"), status("sub", "iris-predictions")
        assert model["verified"] is True and predictions["verified"] is False  # predictions only: unverified
        assert model["metrics"]["accuracy"] > 0.8 and predictions["metrics"]["accuracy"] > 0.8
        assert '"public"' in kubectl("logs", "job/iris-logreg-score")  # the Job's own pod, as on a cluster

        # The platform trains: a tpe-search on the playground's trainingData, then the normal evaluation.
        assert "created" in apply("submission-training.yaml")
        kubectl("wait", "--for=jsonpath={.status.phase}=Evaluated", "sub/iris-optuna", "--timeout=300s", timeout=300)
        trained = status("sub", "iris-optuna")
        assert trained["jobs"]["training"] == "iris-optuna-train" and trained["metrics"]["accuracy"] > 0.8
        assert trained["training"]["iteration"] == 12 and trained["training"]["best"]["estimator"] in (
            "logistic_regression", "random_forest")
        columns = kubectl("get", "sub", "iris-optuna").split("\n")[0].split()
        assert "TRAINING" in columns
        # The ModelDeployment serves leaderboard version 1 (iris-logreg) through KServe's model server.
        assert "modeldeployment.podium.dev/iris created" in apply("modeldeployment.yaml")
        kubectl("wait", "--for=condition=Ready", "mdep/iris", "--timeout=180s", timeout=200)
        served = status("mdep", "iris")
        assert served["stable"]["submission"] == "iris-logreg" and served["phase"] == "Ready"
        assert kubectl("get", "isvc", "iris", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}") == "True"
        request = urllib.request.Request(f"{served['url']}/v1/models/iris:predict", method="POST",
                                         data=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode(),
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read())["predictions"] == ["setosa"]
    finally:
        down = subprocess.run([*podium, "down", "--state-dir", str(state)], capture_output=True, text=True, env=env,
                              timeout=120)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
    log = (state / "operator.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
