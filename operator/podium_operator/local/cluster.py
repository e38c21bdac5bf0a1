"""The local cluster: API emulator, object store, job runner and the operator, on 127.0.0.1.

``LocalCluster`` composes the pieces in-process (tests use it directly); ``serve`` runs it until
SIGTERM and is what ``podium local up`` starts in the background.

It has identities: the admin (``podium-admin``: the operator, the job runner and ``kubeconfig``'s current
context) and the users added with :meth:`LocalCluster.add_user`, each with a bearer token bound to one of
the chart's ClusterRoles and object-store credentials limited to their own upload prefixes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from podium.api.crdgen import write_crds
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.objectstore import Grant, ObjectStore
from podium_operator.local.sandbox.confiner import describe as describe_sandbox

DEFAULT_HOME = Path(os.environ.get("PODIUM_HOME", Path.home() / ".podium")) / "local"
ROLES = ("participant", "owner")  # the chart's podium-participant and podium-playground-owner


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
        self.users: dict[str, dict[str, Any]] = {}  # name -> {"role": ..., "env": ...}

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
        """What a client (kubectl, the SDK, the operator) needs to reach this cluster, as the admin."""
        assert self.store is not None
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.store.env()}

    def add_user(self, name: str, role: str = "participant", *, namespaces: Iterable[str] = ("default",)) -> dict[str, str]:
        """Add a user (``participant`` or ``owner``, bound in ``namespaces``) and return their environment.

        That is ``KUBECONFIG`` (a kubeconfig with their context and token only; the admin's ``kubeconfig``
        gets a context named after them too), the ``AWS_*`` credentials of an object-store grant to read,
        write and list below their own upload prefixes (``uploads/<namespace>/<any playground>/<name>/``;
        an owner also ``playgrounds/<namespace>/``, where the SDK uploads holdouts) and the endpoint.
        """
        assert self.api is not None and self.store is not None
        if role not in ROLES:
            raise ValueError(f"{role!r}: a local user is one of {', '.join(ROLES)}")
        namespaces = tuple(namespaces)
        self.api.add_user(name, role=role, namespaces=namespaces)
        prefixes = tuple(f"uploads/{namespace}/*/{name}/" for namespace in namespaces)
        if role == "owner":
            prefixes += tuple(f"playgrounds/{namespace}/" for namespace in namespaces)
        grant = self.store.add_grant(Grant(f"podium-user-{name}", secrets.token_urlsafe(24), read_prefixes=prefixes,
                                           write_prefixes=prefixes, list_prefixes=prefixes))
        kubeconfig = self.api.write_kubeconfig(self.state_dir / "users" / name / "kubeconfig", user=name)
        self.api.write_kubeconfig(self.kubeconfig)  # the admin's, with a context for every user
        env = {**self.store.env(), "AWS_ACCESS_KEY_ID": grant.access_key, "AWS_SECRET_ACCESS_KEY": grant.secret_key,
               "KUBECONFIG": str(kubeconfig)}
        self.users[name] = {"role": role, "namespaces": list(namespaces), "env": env}
        return dict(env)

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

    def describe(self) -> dict[str, Any]:
        """The state ``podium local`` keeps: addresses, and each user's role and environment (secrets too)."""
        assert self.api is not None and self.store is not None and self.runner is not None
        return {
            "api": self.api.server_url,
            "kubeconfig": str(self.kubeconfig),
            "objectStore": self.store.endpoint,
            "bucket": self.store.bucket,
            "sandbox": describe_sandbox(self.runner.sandbox_support()),
            "pid": str(os.getpid()),
            "env": {**self.store.env(), "KUBECONFIG": str(self.kubeconfig)},
            "users": self.users,
        }


def parse_users(spec: str) -> list[tuple[str, str]]:
    """``alice,bob,carol:owner`` → ``[("alice", "participant"), ("bob", "participant"), ("carol", "owner")]``."""
    users = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, role = item.partition(":")
        if role not in ("", *ROLES) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name):
            raise ValueError(f"{item!r}: users are NAME or NAME:ROLE (a DNS label; role {' or '.join(ROLES)})")
        users.append((name, role or "participant"))
    return users


def user_environment(state: Mapping[str, Any], user: str | None = None) -> dict[str, str]:
    """The environment to act as ``user`` (None: the admin) in a cluster ``up`` started; KeyError if unknown."""
    if user is None:
        return dict(state.get("env") or {"KUBECONFIG": state["kubeconfig"]})
    users = state.get("users") or {}
    if user not in users:
        raise KeyError(f"no local user {user!r}; users: {', '.join(users) or 'none'} (podium local up --users ...)")
    return dict(users[user]["env"])


def serve(state_dir: Path, *, api_port: int = 0, users: Iterable[tuple[str, str]] = ()) -> None:
    """Run the cluster until SIGTERM/SIGINT; writes ``cluster.json`` once everything is up."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with LocalCluster(state_dir, api_port=api_port) as cluster:
        for name, role in users:
            cluster.add_user(name, role)
        state = state_dir / "cluster.json"
        state.touch(mode=0o600)  # it holds the users' credentials
        state.chmod(0o600)
        state.write_text(json.dumps(cluster.describe(), indent=2))
        while not stopping.wait(1.0):
            process = cluster.operator_process
            if process is not None and process.poll() is not None:
                # The operator died: restart it, as a Deployment's pod would be restarted.
                time.sleep(1.0)
                cluster.start_operator()
    (state_dir / "cluster.json").unlink(missing_ok=True)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "cluster.json"
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, ValueError):
        return None
    return state


def up(state_dir: Path = DEFAULT_HOME, *, timeout: float = 60.0, users: str = "") -> dict[str, Any]:
    """Start the cluster in a background process and wait until it is ready (a running one is returned as is).

    ``users`` is ``alice,bob,carol:owner``: users to add (participants unless ``:owner``).
    """
    parse_users(users)  # fail here, not in the background
    state = read_state(state_dir)
    if state is not None:
        return state
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "cluster.json").unlink(missing_ok=True)
    log = (state_dir / "cluster.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "podium_operator.local", "serve", "--state-dir", str(state_dir), "--users", users],
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
