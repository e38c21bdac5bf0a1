"""The local cluster: API emulator, object store, job runner and the operator, on 127.0.0.1.

``LocalCluster`` composes the pieces in-process (tests use it directly); ``serve`` runs it until
SIGTERM and is what ``podium local up`` starts in the background.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from podium.api.crdgen import write_crds
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.objectstore import ObjectStore
from podium_operator.local.sandbox.confiner import describe as describe_sandbox

DEFAULT_HOME = Path(os.environ.get("PODIUM_HOME", Path.home() / ".podium")) / "local"


class LocalCluster:
    """Everything local mode needs; ``with LocalCluster(state_dir) as cluster: ...``."""

    def __init__(
        self, state_dir: Path, *, operator: bool = True, api_port: int = 0, job_parallelism: int = 4,
        metrics_port: int | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.kubeconfig = state_dir / "kubeconfig"
        self.with_operator = operator
        self.api_port = api_port
        self.job_parallelism = job_parallelism
        self.metrics_port = metrics_port
        self.api: ApiServer | None = None
        self.store: ObjectStore | None = None
        self.runner: JobRunner | None = None
        self.operator_process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        crds = write_crds(self.state_dir / "crds")
        self.api = ApiServer(crd_paths=crds, port=self.api_port).start()
        self.api.write_kubeconfig(self.kubeconfig)
        self.store = ObjectStore()
        self.store.start()
        self.runner = JobRunner(
            self.api.url, self.state_dir / "jobs", base_env=self._job_env(), max_parallel=self.job_parallelism
        )
        self.runner.start()
        if self.with_operator:
            self.start_operator()
        return self

    def _job_env(self) -> dict[str, str]:
        """What every job process starts from: `python` must be this interpreter (a pod's image has it)."""
        bin_dir = str(Path(sys.executable).parent)
        return {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}

    def environment(self) -> dict[str, str]:
        """What a client (kubectl, the SDK, the operator) needs to reach this cluster."""
        assert self.store is not None
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.store.env()}

    def start_operator(self, extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.state_dir / "operator.log").open("ab")
        env = {**self.environment(), **(extra_env or {})}
        if self.metrics_port is not None:
            env["PODIUM_METRICS_PORT"] = str(self.metrics_port)
        self.operator_process = subprocess.Popen(
            [sys.executable, "-m", "podium_operator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        return self.operator_process

    def stop_operator(self, *, kill: bool = False) -> None:
        process, self.operator_process = self.operator_process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        self.stop_operator()
        for part in (self.runner, self.store, self.api):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, str]:
        assert self.api is not None and self.store is not None and self.runner is not None
        return {
            "api": self.api.url,
            "kubeconfig": str(self.kubeconfig),
            "objectStore": self.store.endpoint,
            "bucket": self.store.bucket,
            "sandbox": describe_sandbox(self.runner.sandbox_support()),
            "pid": str(os.getpid()),
        }


def serve(state_dir: Path, *, api_port: int = 0) -> None:
    """Run the cluster until SIGTERM/SIGINT; writes ``cluster.json`` once everything is up."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with LocalCluster(state_dir, api_port=api_port) as cluster:
        (state_dir / "cluster.json").write_text(json.dumps(cluster.describe(), indent=2))
        while not stopping.wait(1.0):
            process = cluster.operator_process
            if process is not None and process.poll() is not None:
                # The operator died: restart it, as a Deployment's pod would be restarted.
                time.sleep(1.0)
                cluster.start_operator()
    (state_dir / "cluster.json").unlink(missing_ok=True)


def read_state(state_dir: Path) -> dict[str, str] | None:
    path = state_dir / "cluster.json"
    if not path.exists():
        return None
    state: dict[str, str] = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, ValueError):
        return None
    return state


def up(state_dir: Path = DEFAULT_HOME, *, timeout: float = 60.0) -> dict[str, str]:
    """Start the cluster in a background process and wait until it is ready."""
    state = read_state(state_dir)
    if state is not None:
        return state
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "cluster.json").unlink(missing_ok=True)
    log = (state_dir / "cluster.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "podium_operator.local", "serve", "--state-dir", str(state_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local cluster exited with code {process.returncode}; see {state_dir / 'cluster.log'}")
        state = read_state(state_dir)
        if state is not None:
            return state
        time.sleep(0.2)
    process.terminate()
    raise TimeoutError(f"local cluster not ready after {timeout:.0f}s; see {state_dir / 'cluster.log'}")


def down(state_dir: Path = DEFAULT_HOME, *, timeout: float = 30.0) -> bool:
    """Stop a cluster started by ``up``; False when none was running."""
    state = read_state(state_dir)
    if state is None:
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True
