"""`podium local up` / `down` as the README shows them: a background cluster kubectl can use."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

REPO = Path(__file__).resolve().parents[2]


def podium(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "podium.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=cwd)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_local_up_prints_the_next_steps_which_work_and_down_reports_progress(tmp_path: Path):
    # A shell where `podium` is not on PATH (the venv is not activated): up says how to get it there.
    env = {**os.environ, "PODIUM_HOME": str(tmp_path), "PATH": os.pathsep.join(("/usr/local/bin", "/usr/bin", "/bin"))}
    env.pop("KUBECONFIG", None)
    state = tmp_path / "local"
    up = podium("local", "up", "--state-dir", str(state), env=env, cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert f"source {Path(sys.prefix) / 'bin/activate'}" in up.stdout
        assert f"export KUBECONFIG={state / 'kubeconfig'}" in up.stdout
        assert f"kubectl apply -f {REPO / 'examples/playground.yaml'}" in up.stdout  # run from elsewhere: a full path
        assert "from podium.client import ModelPlayground" in up.stdout  # and how to use the SDK
        assert "sandbox mode " in up.stdout  # says which restrictions this machine enforces
        kube = {**env, "KUBECONFIG": str(state / "kubeconfig")}
        applied = subprocess.run(["kubectl", "apply", "-f", str(REPO / "examples/playground.yaml")], env=kube,
                                 capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0 and "playground.podium.dev/iris created" in applied.stdout, applied.stderr
        # up stored the example's holdout: the playground becomes Ready.
        waited = subprocess.run(["kubectl", "wait", "--for=condition=Ready", "pg/iris", "--timeout=60s"], env=kube,
                                capture_output=True, text=True, timeout=90)
        assert waited.returncode == 0, waited.stderr
        listed = subprocess.run(["kubectl", "get", "podium"], env=kube, capture_output=True, text=True, timeout=60)
        assert "iris" in listed.stdout and "classification" in listed.stdout
        assert podium("local", "status", "--state-dir", str(state), env=env).returncode == 0
    finally:
        down = podium("local", "down", "--state-dir", str(state), env=env)
    assert down.returncode == 0 and down.stdout.endswith("Podium local cluster stopped.\n"), down.stdout + down.stderr
    for component in ("operator", "job runner", "object store", "API server"):  # a status line each, as it stops
        assert re.search(rf"^  {component} \.\.\. stopped \(\d+\.\d s\)$", down.stdout, re.MULTILINE), down.stdout
    assert podium("local", "status", "--state-dir", str(state), env=env).returncode == 1
    assert podium("local", "down", "--state-dir", str(state), env=env).stdout == "No local cluster was running.\n"


def test_next_steps_skip_what_this_shell_has_already(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from podium_operator.local.cli import next_steps

    kubeconfig = str(tmp_path / "kubeconfig")
    monkeypatch.setenv("PATH", os.pathsep.join((str(Path(sys.prefix) / "bin"), "/usr/bin", "/bin")))
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.chdir(REPO)
    commands = [command for command, _ in next_steps({"kubeconfig": kubeconfig, "users": {"alice": {"role": "owner"}}})]
    assert not any(command.startswith(("source ", "export KUBECONFIG")) for command in commands)
    assert "kubectl apply -f examples/playground.yaml" in commands and "kubectl --context alice get pg" in commands


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_local_up_with_users_gives_each_a_context_and_an_environment(tmp_path: Path):
    env = {**os.environ, "PODIUM_HOME": str(tmp_path)}
    state = tmp_path / "local"
    assert podium("local", "up", "--state-dir", str(state), "--users", "Alice!", env=env).returncode == 2
    up = podium("local", "up", "--state-dir", str(state), "--users", "alice,carol:owner", env=env)
    try:
        assert up.returncode == 0, up.stderr
        assert "kubectl --context alice" in up.stdout and "podium local env --user carol" in up.stdout, up.stdout
        kube = {**env, "KUBECONFIG": str(state / "kubeconfig")}

        def kubectl(*args: str, as_env: dict[str, str] = kube) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["kubectl", *args], env=as_env, capture_output=True, text=True, timeout=60)

        assert kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == "podium-admin"
        assert kubectl("--context", "alice", "auth", "whoami", "-o",
                       "jsonpath={.status.userInfo.username}").stdout == "alice"
        assert kubectl("--context", "alice", "get", "playgrounds").returncode == 0
        denied = kubectl("--context", "alice", "get", "secrets")
        assert denied.returncode != 0 and 'User "alice" cannot list resource "secrets"' in denied.stderr, denied.stderr
        applied = kubectl("--context", "alice", "apply", "-f", str(REPO / "examples/playground.yaml"))
        assert applied.returncode != 0 and "forbidden" in applied.stderr.lower(), applied.stderr  # owners only
        assert kubectl("--context", "carol", "apply", "-f", str(REPO / "examples/playground.yaml")).returncode == 0

        printed = podium("local", "env", "--state-dir", str(state), "--user", "alice", env=env)
        assert printed.returncode == 0, printed.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in printed.stdout.splitlines())
        assert exports["AWS_ACCESS_KEY_ID"] != "podium-local" and exports["PODIUM_S3_BUCKET"] == "podium"
        as_alice = {**env, "KUBECONFIG": exports["KUBECONFIG"]}
        assert kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", as_env=as_alice).stdout == "alice"
        assert podium("local", "env", "--state-dir", str(state), "--user", "mallory", env=env).returncode == 1
        status = podium("local", "status", "--state-dir", str(state), env=env)
        assert "alice (participant)" in status.stdout and "carol (owner)" in status.stdout, status.stdout
        assert "SECRET" not in status.stdout
    finally:
        down = podium("local", "down", "--state-dir", str(state), env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
