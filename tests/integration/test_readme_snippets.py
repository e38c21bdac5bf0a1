"""The README's snippets do what it says, as written: its ``python`` blocks (in order, in one namespace, against
the local cluster) and its local-mode shell block (``podium local up`` … ``podium local down``, in a shell).

Not run here: the quick start's ``make demo`` / ``make test`` (the demo is run by its own target, the suite
is this) and "Running against a real cluster" (needs helm and a cluster).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # flows through the real operator

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for tag, body in FENCE.findall(README) if tag == language]


def test_the_python_snippets_run_as_written(cluster):
    snippets = blocks("python")
    assert any("ModelPlayground.create" in snippet for snippet in snippets)
    namespace: dict = {"__name__": "__main__"}  # as a user's script: the preprocessor is pickled by value
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - the point of the test
    board, private = namespace["board"], namespace["private"]
    # What the snippet promises, with no waiting of the test's own: every entry ranked, the custom metadata
    # as columns, and (right after close_competition) the private board of the competition track.
    assert sorted(board["submission"]) == ["just-predictions", "logreg", "svm"], board
    logreg = board.set_index("submission").loc["logreg"]
    assert (logreg["C"], logreg["scaled"]) == (1.0, True)
    assert list(private["submission"]) == ["logreg"], private
    # Serving: logreg deployed, answering with labels and probabilities, then svm-v2 promoted through the canary.
    assert len(namespace["labels"]) == 3 and list(namespace["proba"].columns) == ["setosa", "versicolor", "virginica"]
    deployment = namespace["deployment"]
    assert deployment.stable["submission"] == "svm-v2" and deployment.phase == "Ready"
    assert [event["action"] for event in deployment.history][-1] == "Promoted"
    # Training: a tpe-search trained and evaluated, then recommended to the wine playground, which trains it.
    assert namespace["progress"]["iteration"] == 8 and namespace["progress"]["best"]["estimator"] in ("logistic_regression", "knn")
    (first,) = namespace["recommendations"]
    assert first.source_playground == "iris" and first.training["hyperparameters"]["trials"] == 1
    trained = namespace["wine_pg"].submission("from-iris")["status"]
    assert trained["phase"] == "Evaluated" and trained["training"]["best"] == namespace["progress"]["best"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_local_mode_shell_block_runs_as_written(tmp_path):
    (block,) = [body for tag, body in FENCE.findall(README) if body.startswith("podium local up")]
    script = "set -e\n" + "".join(line.split("  #")[0] + "\n" for line in block.splitlines())
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for key in [k for k in env if k.startswith(("AWS_", "PODIUM_", "KUBECONFIG"))]:
        env.pop(key)
    try:
        result = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    finally:  # never leave a cluster running
        subprocess.run([sys.executable, "-m", "podium.cli", "local", "down"], env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^iris\s", result.stdout, re.MULTILINE), result.stdout
