"""The local sandbox allows a list instead of hiding one: a confined pod sees what a container
image would hold (the interpreter, its libraries, Podium's own packages, a minimal ``/etc`` and
``/dev``) and its own directories, and nothing else of the host.

Each test plays the untrusted model of a predict step (real processes, the HTTP API emulator,
no mocks) against what the host leaves lying around: the checkout, a holdout's labels at a
local path, a unix socket listening at a host path. What this machine cannot enforce is
skipped with the reason from ``sandbox_support()``; a runner that cannot confine is simulated
by handing the job runner the probe results of an unprivileged runner.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import podium
import podium_operator
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.podspec.plan import ContainerPlan, Mount, PodPlan, PodRefs, plan_pod
from podium_operator.local.podspec.security import Security
from podium_operator.local.sandbox import confiner
from tests.local.conftest import make_api_client
from tests.local.test_jobrunner import Cluster
from tests.local.test_sandbox import (
    NONROOT,
    SANDBOX_LABEL,
    Listener,
    deny_sandbox_traffic,
    empty_dir,
    job,
    require,
    restricted,
    run,
    runner_env,
)

REPO = Path(__file__).resolve().parents[2]
SYSTEM = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr"}  # an image's base OS
ETC = {"passwd", "group", "hosts", "nsswitch.conf", "ld.so.cache", "localtime", "ssl", "pki", "ca-certificates"}
DEV = {"null", "zero", "full", "random", "urandom", "tty", "shm", "fd", "stdin", "stdout", "stderr"}
# What a runner that is not root and may not create user namespaces finds (`enter.py --probe`).
UNPRIVILEGED = "unshare: Operation not permitted"
NOT_ROOT = {
    "user": f"the runner is not root (uid 1000) and cannot create user namespaces: {UNPRIVILEGED}",
    **dict.fromkeys(("network", "mounts", "readonly_root", "root_fs", "userns"), UNPRIVILEGED),
    "mode": "none",
}

MODEL = r"""
import base64, json, os, socket, sys
t = json.loads(base64.b64decode(sys.argv[1]))

def attempt(action, arg):
    try:
        return action(arg)
    except OSError as e:
        return type(e).__name__

def read(path):
    return open(path, "rb").read().decode(errors="replace")

def connect(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(address)
    s.close()
    return "connected"

seen = {"uid": os.getuid(), "gid": os.getgid()}
seen["read"] = {k: attempt(read, p) for k, p in t["read"].items()}
seen["list"] = {k: attempt(lambda p: sorted(os.listdir(p)), p) for k, p in t["list"].items()}
seen["unix"] = {k: attempt(connect, a) for k, a in t["unix"].items()}
try:  # a model still is a model: its framework imports and fits
    import numpy, sklearn.linear_model
    fitted = sklearn.linear_model.LogisticRegression().fit(numpy.array([[0.0], [1.0]]), [0, 1])
    seen["model"] = int(fitted.predict(numpy.array([[1.0]]))[0])
except Exception as e:
    seen["model"] = repr(e)
json.dump(seen, open("/out/report.json", "w"))
"""


class UnixListener(Listener):
    """A unix stream socket anyone may connect to, counting connections (``address``: a path or abstract)."""

    def __init__(self, address: str) -> None:
        self.address = address
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        if not address.startswith("\0"):
            os.chmod(address, 0o777)
        server.listen()
        super().__init__(server)


@dataclass
class Escape:
    seen: dict[str, Any]  # what the model saw
    support: dict[str, str | None]
    workdir: Path
    labels: Path
    sockets: dict[str, UnixListener]
    default_log: str  # a pod without any securityContext


def runtime_tops(workdir: Path) -> set[str]:
    """The top-level directories an image of this interpreter (and the pods' own directories) need."""
    paths = [Path(sys.prefix), Path(sys.base_prefix), workdir,
             *(Path(p.__file__).resolve().parent for p in (podium, podium_operator) if p.__file__)]  # fmt: skip
    return {p.parts[1] for path in paths for p in (path, path.resolve()) if len(p.parts) > 1}


def host_leftovers() -> tuple[Path, Path]:
    """A world-readable labels file and a directory for sockets, where the host keeps such things."""
    base = Path(tempfile.mkdtemp(prefix="podium-allowlist-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    labels = base / "holdout" / "labels.csv"
    labels.parent.mkdir(mode=0o755)
    labels.write_text("id,label\n1,label-7f3a9c\n")
    os.chmod(labels, 0o644)
    return base, labels


def model_job(name: str, targets: dict[str, Any]) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps(targets).encode()).decode()  # path mapping leaves it alone
    return job(
        name, MODEL, encoded, labels=SANDBOX_LABEL, pod_security={"runAsNonRoot": True, "fsGroup": NONROOT},
        security=restricted(), volumes={"/tmp": empty_dir(), "/out": empty_dir()},
    )  # fmt: skip


def attack(workdir: Path, fake_support: dict[str, str | None] | None) -> Iterator[Escape]:
    """Run the model (and a pod without securityContext) once, under a runner probing ``fake_support``."""
    base, labels = host_leftovers()
    sockets = {"host socket": UnixListener(str(base / "agent.sock")),
               "abstract socket": UnixListener(f"\0podium-allowlist-{secrets.token_hex(4)}")}  # fmt: skip
    try:
        with pytest.MonkeyPatch.context() as patch, ApiServer() as server, make_api_client(server) as client:
            if fake_support is not None:
                patch.setattr(confiner, "sandbox_support", lambda workdir=None: dict(fake_support))
            cluster = Cluster(client)
            deny_sandbox_traffic(client)
            with JobRunner(server.url, workdir, base_env=runner_env(), max_grace=0.5) as runner:
                targets = {
                    "read": {"checkout README": str(REPO / "README.md"), "holdout labels": str(labels),
                             "host passwd": "/etc/passwd"},
                    "list": {"/": "/", "checkout": str(REPO), "labels dir": str(labels.parent),
                             "/etc": "/etc", "/dev": "/dev"},
                    "unix": {k: s.address for k, s in sockets.items()},
                }  # fmt: skip
                cluster.create(model_job("model", targets))
                whoami = (
                    "import os, sys\ntry:\n    open(sys.argv[1]).read(); seen = 'read'\n"
                    "except OSError as e:\n    seen = type(e).__name__\nprint(os.getuid(), os.getgid(), seen)"
                )
                cluster.create(job("plain", whoami, str(REPO / "README.md")))
                for name in ("model", "plain"):
                    cluster.finished(name, 60)
                (pod,) = cluster.pods("model")
                pod_name = pod["metadata"]["name"]
                report = runner.pod_dir("default", pod_name) / "volumes" / "v1" / "report.json"
                assert report.exists(), runner.logs("default", pod_name, "main")
                (plain,) = cluster.pods("plain")
                yield Escape(
                    seen=json.loads(report.read_text()),
                    support=runner.sandbox_support(),
                    workdir=workdir,
                    labels=labels,
                    sockets=sockets,
                    default_log=runner.logs("default", plain["metadata"]["name"], "main"),
                )
    finally:
        for listener in sockets.values():
            listener.close()
        shutil.rmtree(base)


@pytest.fixture(scope="module")
def escape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Escape]:
    yield from attack(tmp_path_factory.mktemp("allowlist") / "jobs", None)


# --- What the model can reach ------------------------------------------------------------------


def test_the_checkout_is_not_visible(escape: Escape) -> None:
    require(escape.support, "user", "mounts")
    assert escape.seen["read"]["checkout README"] == "FileNotFoundError"
    # Of the checkout only the way to the interpreter and Podium's own packages is left.
    listed = escape.seen["list"]["checkout"]
    assert isinstance(listed, list) and set(listed) <= {".venv", "sdk", "operator"}, listed
    assert not {"README.md", "pyproject.toml", "tests", ".git"} & set(listed)


def test_holdout_labels_at_a_local_path_are_not_visible(escape: Escape) -> None:
    require(escape.support, "user", "mounts")
    assert escape.seen["read"]["holdout labels"] == "FileNotFoundError"
    assert escape.seen["list"]["labels dir"] == "FileNotFoundError"


def test_host_unix_sockets_cannot_be_reached(escape: Escape) -> None:
    require(escape.support, "user", "mounts", "network")
    assert escape.seen["unix"] == {"host socket": "FileNotFoundError", "abstract socket": "ConnectionRefusedError"}
    assert [s.accepted for s in escape.sockets.values()] == [0, 0]


def test_the_root_holds_only_what_an_image_would(escape: Escape) -> None:
    require(escape.support, "user", "mounts")
    listed = escape.seen["list"]
    allowed = SYSTEM | {"etc", "dev", "proc", "tmp"} | runtime_tops(escape.workdir)
    assert {"usr", "etc", "dev", "proc", "tmp"} <= set(listed["/"]) <= allowed, listed["/"]
    assert "var" not in listed["/"]  # where the host keeps its leftovers here
    assert "passwd" in listed["/etc"] and set(listed["/etc"]) <= ETC, listed["/etc"]
    assert {"null", "urandom", "shm"} <= set(listed["/dev"]) <= DEV, listed["/dev"]
    users = {line.split(":")[0] for line in escape.seen["read"]["host passwd"].splitlines() if line}
    assert users <= {"root", "nobody", "podium"}, users  # the pod's user, not the host's accounts


def test_the_model_still_imports_its_framework_and_writes_its_volume(escape: Escape) -> None:
    assert escape.seen["model"] == 1  # numpy and scikit-learn work; the report is in its /out volume


def test_a_pod_without_security_context_runs_unprivileged(escape: Escape) -> None:
    require(escape.support, "user", "mounts")
    uid, gid, readme = escape.default_log.split()
    assert (int(uid), int(gid)) == (65534, 65534), escape.default_log
    assert readme == "FileNotFoundError"  # confined like any other non-root pod


# --- Without the privileges to confine -----------------------------------------------------------


def test_sandbox_support_reports_the_new_root_and_the_mode(tmp_path: Path) -> None:
    support = confiner.sandbox_support(tmp_path)
    assert {"user", "network", "mounts", "readonly_root", "root_fs", "userns", "mode"} <= set(support)
    assert support["mode"] in ("root", "userns", "none")
    if support["root_fs"] is not None:  # a view without a new root is no view
        assert support["mounts"] is not None
    line = confiner.describe(support)
    assert "\n" not in line and support["mode"] in line


def test_a_confiner_that_cannot_confine_refuses_a_sandboxed_pod(tmp_path: Path) -> None:
    manifest = model_job("model", {})
    manifest["metadata"]["namespace"] = "default"
    deny = {"spec": {"podSelector": {"matchLabels": SANDBOX_LABEL}, "policyTypes": ["Egress", "Ingress"]}}
    plan = plan_pod(manifest, pod_name="model-abcde", pod_dir=tmp_path / "default" / "model-abcde",
                    refs=PodRefs(network_policies=[deny]))  # fmt: skip
    with pytest.raises(OSError) as refused:
        confiner.Confiner(tmp_path, NOT_ROOT).prepare(plan)
    message = str(refused.value)
    assert all(r in message for r in ("user", "network", "mounts", "readonly_root")), message
    assert "not root" in message
    line = confiner.describe(NOT_ROOT)
    assert "\n" not in line and "none" in line


def test_a_runner_that_cannot_confine_fails_sandboxed_pods_and_runs_others(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch, ApiServer() as server, make_api_client(server) as client:
        patch.setattr(confiner, "sandbox_support", lambda workdir=None: dict(NOT_ROOT))
        cluster = Cluster(client)
        deny_sandbox_traffic(client)
        with JobRunner(server.url, tmp_path / "jobs", base_env=runner_env(), max_grace=0.5) as runner:
            message = run(cluster, runner, model_job("model", {"read": {}, "list": {}, "unix": {}}))
            plain = run(cluster, runner, job("plain", "print('ran')"))
            (pod,) = cluster.pods("model")
    assert message.startswith("failed: ") and "not root" in message, message
    assert all(r in message for r in ("user", "network", "mounts", "readonly_root")), message
    assert not runner.log_path("default", pod["metadata"]["name"], "main").exists()  # it never started
    assert plain == "ran\n"  # it asked for nothing: it runs as the runner's user, as before


# --- With user namespaces instead of root --------------------------------------------------------


@pytest.fixture(scope="module")
def escape_userns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Escape]:
    found = confiner.sandbox_support()
    if found["userns"] is not None:
        pytest.skip(f"no user namespaces on this machine: {found['userns']}")
    # The runner here is root: pretend it is not, so that the sandbox uses a user namespace.
    userns = {**{k: None for k in found if k != "mode"}, "mode": "userns"}
    yield from attack(tmp_path_factory.mktemp("userns") / "jobs", userns)


def test_user_namespaces_give_the_same_guarantees(escape_userns: Escape) -> None:
    seen = escape_userns.seen
    assert (seen["uid"], seen["gid"]) == (NONROOT, NONROOT)  # as seen inside its namespace
    assert seen["read"]["checkout README"] == seen["read"]["holdout labels"] == "FileNotFoundError"
    assert seen["unix"] == {"host socket": "FileNotFoundError", "abstract socket": "ConnectionRefusedError"}
    assert set(seen["list"]["/"]) <= SYSTEM | {"etc", "dev", "proc", "tmp"} | runtime_tops(escape_userns.workdir)
    assert seen["model"] == 1


# --- A real runner that is not root -----------------------------------------------------------------

NOBODY = 65534
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # (this interpreter may lie where nobody reaches)
INSIDE = r"""
import json, os, socket, sys
t = json.loads(sys.argv[1])
def attempt(action, arg):
    try:
        return action(arg)
    except OSError as e:
        return type(e).__name__
seen = {"ids": [os.getuid(), os.getgid()], "root": sorted(os.listdir("/")),
        "read": attempt(lambda p: open(p).read(), t["readme"]), "socket": attempt(lambda p: os.stat(p) and "seen", t["socket"]),
        "write /": attempt(lambda p: open(p, "w").write("x") and "written", "/evil"),
        "connect": attempt(lambda port: socket.create_connection(("127.0.0.1", port), timeout=2) and "connected", t["port"])}
open(t["out"] + "/report.json", "w").write(json.dumps(seen))  # (its volume, at its host path)
"""


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None, reason="becoming an unprivileged runner needs root and a system python")
def test_a_real_unprivileged_runner_confines_through_a_user_namespace() -> None:
    """The runner is ``nobody`` here, for real: the sandbox takes a user namespace instead of root."""
    from podium_operator.local.sandbox.view import host_image

    assert SYSTEM_PYTHON is not None
    as_nobody: dict[str, Any] = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    probe = subprocess.run([SYSTEM_PYTHON, "-I", "-S", str(confiner.EXEC_SCRIPT), "--probe"], capture_output=True,
                           text=True, timeout=60, check=True, cwd="/", **as_nobody)  # fmt: skip
    found = json.loads(probe.stdout)
    if found["mode"] != "userns":
        assert found["mode"] == "none" and "not root" in str(found["user"])  # and so restricted pods fail
        pytest.skip(f"no unprivileged user namespaces here: {found['userns']}")
    assert {k: v for k, v in found.items() if k != "mode"} == dict.fromkeys(confiner.CHECKS)
    base, _ = host_leftovers()
    listener = UnixListener(str(base / "agent.sock"))
    server = socket.create_server(("127.0.0.1", 0))
    try:
        workdir = base / "jobs"
        pod_dir = workdir / "default" / "p"
        out = pod_dir / "volumes" / "out"
        for d in (workdir, workdir / "default", pod_dir, pod_dir / "tmp", pod_dir / "termination", pod_dir / "work" / "main", out):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, NOBODY, NOBODY)  # (the runner's own directories, as it would have made them)
        targets = {"readme": str(REPO / "README.md"), "socket": listener.address, "port": server.getsockname()[1],
                   "out": str(out)}  # fmt: skip
        c = ContainerPlan(
            name="main", image="", argv=(SYSTEM_PYTHON, "-c", INSIDE, json.dumps(targets)),
            env={"PATH": "/usr/bin:/bin", "HOME": str(pod_dir / "tmp")}, cwd=pod_dir / "work" / "main",
            log_path=pod_dir / "main.log", termination_log=pod_dir / "termination" / "main", mounts=(Mount(out, "/out"),),
            security=Security(uid=NONROOT, gid=NONROOT, groups=(NONROOT,), read_only_root=True, no_new_privileges=True,
                              no_network=True),
        )  # fmt: skip
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(confiner, "image", lambda: host_image([]))  # the system python's image: the base OS
            runner = confiner.Confiner(workdir, found, runner=(NOBODY, NOBODY))
            argv, cwd = runner.command(c, PodPlan("default", "p", pod_dir, {}, (), (c,)))
        done = subprocess.run([SYSTEM_PYTHON, *argv[1:]], cwd=cwd, env=dict(c.env), capture_output=True, text=True,
                              timeout=60, **as_nobody)  # fmt: skip
        assert done.returncode == 0, done.stderr
        seen = json.loads((out / "report.json").read_text())
    finally:
        listener.close()
        server.close()
        shutil.rmtree(base)
    assert seen["ids"] == [NONROOT, NONROOT]  # its own user, inside its namespace
    assert set(seen["root"]) <= SYSTEM | {"etc", "dev", "proc", "tmp", base.parts[1]}, seen["root"]
    assert seen["read"] == seen["socket"] == "FileNotFoundError"
    assert seen["write /"] in ("OSError", "PermissionError")  # a read-only root (EROFS)
    assert seen["connect"] != "connected"
