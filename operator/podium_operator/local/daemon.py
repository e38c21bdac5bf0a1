"""The background process behind ``podium local up`` / ``down`` / ``status`` / ``env``.

``up`` starts ``python -m podium_operator.local serve``, which runs a :class:`LocalCluster`, adds the users
asked for, stores the objects ``examples/`` names (:mod:`.examples`) and then writes ``cluster.json``
(addresses, users, credentials; the owner's only), which ``up`` waits for. ``down`` sends SIGTERM and
reports each component as the server stops it, through ``stopping.log`` (one ``component<TAB>-`` line
when it starts stopping, one ``component<TAB>seconds`` line when it has stopped).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium_operator.local.apiserver.rbac import ROLES as CHART_ROLES

if TYPE_CHECKING:  # only `serve` needs the cluster itself: `down`, `status` and `env` import nothing heavy
    from podium_operator.local.cluster import Progress

ROLES = tuple(CHART_ROLES)  # participant, owner

DEFAULT_HOME = Path(os.environ.get("PODIUM_HOME", Path.home() / ".podium")) / "local"
STATE = "cluster.json"
STOPPING = "stopping.log"


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


def serve(state_dir: Path, *, api_port: int = 0, users: Iterable[tuple[str, str]] = (), examples: bool = True) -> None:
    """Run the cluster until SIGTERM/SIGINT; writes ``cluster.json`` once everything is up."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    (state_dir / STOPPING).unlink(missing_ok=True)
    from podium_operator.local.cluster import LocalCluster

    cluster = LocalCluster(state_dir, api_port=api_port)
    try:
        cluster.start()
        seeding = cluster.seed_examples() if examples else None  # while the operator starts
        for name, role in users:
            cluster.add_user(name, role)
        described = cluster.describe()
        if seeding is not None:
            stored, _ = seeding.communicate()  # its errors went to this process's log
            described["examples"] = stored.split() if seeding.returncode == 0 else None
        state = state_dir / STATE
        state.touch(mode=0o600)  # it holds the users' credentials
        state.chmod(0o600)
        state.write_text(json.dumps(described, indent=2))
        while not stopping.wait(1.0):
            process = cluster.operator_process
            if process is not None and process.poll() is not None:
                # The operator died: restart it, as a Deployment's pod would be restarted.
                time.sleep(1.0)
                cluster.start_operator()
    finally:
        (state_dir / STATE).unlink(missing_ok=True)
        with (state_dir / STOPPING).open("a", buffering=1) as log:  # line-buffered: down reads it as it grows

            def report(name: str, took: float | None) -> None:
                log.write(f"{name}\t{'-' if took is None else f'{took:.2f}'}\n")

            cluster.stop(report)


def read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, ValueError):
        return None
    return state


def up(state_dir: Path = DEFAULT_HOME, *, timeout: float = 120.0, users: str = "") -> dict[str, Any]:
    """Start the cluster in a background process and wait until it is ready (a running one is returned as is).

    ``users`` is ``alice,bob,carol:owner``: users to add (participants unless ``:owner``).
    """
    parse_users(users)  # fail here, not in the background
    state = read_state(state_dir)
    if state is not None:
        return state
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STATE).unlink(missing_ok=True)
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


def down(state_dir: Path = DEFAULT_HOME, *, timeout: float = 30.0, progress: Progress | None = None) -> bool:
    """Stop a cluster started by ``up``, telling ``progress`` of each component; False when none was running."""
    state = read_state(state_dir)
    if state is None:
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    reported = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gone = not _alive(pid)
        reported = _report(state_dir / STOPPING, reported, progress)
        if gone:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs: an exited one waiting to be reaped (a zombie) does not, though it exists
    until its parent (init, for the server ``up`` started) gets to it, which may take a second or more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: existing is all there is to know
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _report(path: Path, done: int, progress: Progress | None) -> int:
    """Hand ``progress`` the complete lines of ``stopping.log`` after the first ``done``; return how many now."""
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return done
    complete = [line for line in lines if line.endswith("\n")]
    for line in complete[done:]:
        name, _, took = line.rstrip("\n").partition("\t")
        if progress is not None:
            progress(name, None if took == "-" else float(took))
    return len(complete)
