"""The local sandbox: pure policy and view planning, then real sandboxed Jobs attacking their
neighbours (real processes against the HTTP API emulator, no mocks).

Each attack check needs a restriction this machine may not allow: it is skipped, with the
reason from ``sandbox_support()``, rather than passed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.podspec.plan import ContainerPlan, Mount, PlanError, PodPlan, PodRefs, plan_pod
from podium_operator.local.podspec.security import (
    Security,
    container_security,
    egress,
    non_root_violation,
    run_as,
)
from podium_operator.local.sandbox.confiner import CHECKS, Confiner, SandboxUnavailable, describe, requested
from podium_operator.local.sandbox.fs import apply_fs_group
from podium_operator.local.sandbox.view import (
    Bind,
    Dir,
    File,
    Image,
    Link,
    Tmpfs,
    blocked_ancestor,
    host_image,
    plan_view,
)
from tests.local.conftest import make_api_client
from tests.local.test_jobrunner import Cluster, wait_for

NONROOT = 65532
SANDBOX_LABEL = {"podium.dev/sandbox": "true"}
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
BIN = str(Path(sys.executable).parent)  # `python` resolves here, as the operator's commands expect


def require(support: dict[str, str | None], *restrictions: str) -> None:
    """Skip unless the runner enforces ``restrictions`` (``JobRunner.sandbox_support()``)."""
    for r in restrictions:
        if support[r] is not None:
            pytest.skip(f"{r} is not enforced on this machine: {support[r]}")


# --- Manifests ---------------------------------------------------------------------------------


def restricted(uid: int = NONROOT) -> dict[str, Any]:
    """The predict container's securityContext, as the operator writes it."""
    return {
        "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip


def job(
    name: str,
    code: str,
    *args: str,
    labels: dict[str, str] | None = None,
    pod_security: dict[str, Any] | None = None,
    security: dict[str, Any] | None = None,
    volumes: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Job running ``python -c code args`` with ``volumes`` as ``{mountPath: volume source}``."""
    volumes = volumes or {}
    container: dict[str, Any] = {
        "name": "main", "image": "python:3.11", "command": ["python", "-c", code, *args],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "volumeMounts": [{"name": f"v{i}", "mountPath": path} for i, path in enumerate(volumes)],
    }  # fmt: skip
    if security:
        container["securityContext"] = security
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "automountServiceAccountToken": False, "containers": [container],
        "volumes": [{"name": f"v{i}", **source} for i, source in enumerate(volumes.values())],
    }  # fmt: skip
    if pod_security:
        pod_spec["securityContext"] = pod_security
    template = {"metadata": {"labels": labels or {}}, "spec": pod_spec}
    return {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template}}


def empty_dir() -> dict[str, Any]:
    return {"emptyDir": {}}


def claim(name: str) -> dict[str, Any]:
    return {"persistentVolumeClaim": {"claimName": name}}


def create_claim(cluster: Cluster, name: str) -> None:
    body = {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    cluster.core.create_namespaced_persistent_volume_claim("default", body)  # type: ignore[arg-type]


def deny_sandbox_traffic(client: kubernetes.client.ApiClient) -> None:
    """The operator's NetworkPolicy for untrusted pods."""
    body = {
        "metadata": {"name": "podium-deny-predict-egress"},
        "spec": {"podSelector": {"matchLabels": SANDBOX_LABEL}, "policyTypes": ["Egress", "Ingress"]},
    }
    kubernetes.client.NetworkingV1Api(client).create_namespaced_network_policy("default", body)  # type: ignore[arg-type]


def only_pod(cluster: Cluster, job_name: str) -> str:
    (pod,) = cluster.pods(job_name)
    return str(pod["metadata"]["name"])


def runner_env(**extra: str) -> dict[str, str]:
    return {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


# --- Pure: policy ------------------------------------------------------------------------------


def test_container_security_merges_pod_and_container_contexts() -> None:
    pod = {"securityContext": {"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [3000, 2000]}}
    assert container_security(pod, {"securityContext": {"runAsUser": 7}}) == Security(
        uid=7, gid=7, groups=(2000, 3000)
    )
    c = {
        "securityContext": {
            "runAsGroup": 5,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        }
    }
    assert container_security(pod, c, no_network=True) == Security(
        uid=1000, gid=5, groups=(2000, 3000), read_only_root=True, no_new_privileges=True, no_network=True
    )
    assert container_security({}, {}) == Security()


@pytest.mark.parametrize(
    ("pod_ctx", "ctx", "runner_uid", "error"),
    [
        ({"runAsNonRoot": True}, {}, 0, None),  # local mode's image user is nobody, even under a root runner
        ({"runAsNonRoot": True}, {}, 1000, None),
        ({"runAsNonRoot": True}, {"runAsUser": 0}, 1000, "breaks non-root policy"),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, 0, None),
        ({}, {"runAsNonRoot": True, "runAsUser": NONROOT}, 0, None),
    ],
)
def test_run_as_non_root(
    pod_ctx: dict[str, Any], ctx: dict[str, Any], runner_uid: int, error: str | None
) -> None:
    pod, container = {"securityContext": pod_ctx}, {"securityContext": ctx}
    violation = non_root_violation(pod, container, container_security(pod, container), runner_uid)
    assert (violation is None) if error is None else (error in str(violation))


def policy(selector: dict[str, Any] | None, types: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"podSelector": selector or {}, **spec}
    if types is not None:
        body["policyTypes"] = types
    return {"spec": body}


@pytest.mark.parametrize(
    ("policies", "denied", "partial"),
    [
        ([], False, False),
        ([policy({"matchLabels": SANDBOX_LABEL}, ["Egress", "Ingress"])], True, False),
        ([policy(None, ["Egress"])], True, False),  # an empty selector selects every pod
        ([policy({"matchLabels": {"podium.dev/sandbox": "false"}}, ["Egress"])], False, False),
        ([policy(None, ["Ingress"])], False, False),
        ([policy(None)], False, False),  # no types, no egress rules: an ingress policy
        ([policy(None, egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}])], False, True),
        (
            [
                policy(None, ["Egress"]),
                policy(
                    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]},
                    ["Egress"],
                    egress=[{}],
                ),
            ],
            False,
            True,
        ),  # fmt: skip
        (
            [policy({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, ["Egress"])],
            False,
            False,
        ),
    ],
)
def test_egress_follows_network_policies(policies: list[dict[str, Any]], denied: bool, partial: bool) -> None:
    decision = egress(policies, {**SANDBOX_LABEL, "app": "x"})
    assert (decision.denied, decision.partial) == (denied, partial)


def test_requested_restrictions() -> None:
    assert requested(Security(), 0, 0) == ["user", "mounts"]  # the image user: nobody, confined
    assert requested(Security(uid=0, gid=0), 0, 0) == []  # root only when asked for
    assert requested(Security(), 1000, 1000) == []  # a runner that is not root: its own user
    assert requested(Security(uid=NONROOT, gid=NONROOT), 0, 0) == ["user", "mounts"]
    assert requested(Security(uid=0, read_only_root=True, no_network=True), 0, 0) == [
        "network", "mounts", "readonly_root",
    ]  # fmt: skip
    assert requested(Security(uid=1000, gid=1000), 1000, 1000) == []  # already that user


# --- Pure: plans and views ---------------------------------------------------------------------


def pod_job(*volumes: dict[str, Any], mounts: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    container = {"name": "main", "command": ["x"], "volumeMounts": mounts}
    spec = {"containers": [container], "volumes": list(volumes), **pod}
    return {
        "metadata": {"name": "j", "namespace": "default", "uid": "u"},
        "spec": {"template": {"spec": spec}},
    }


def test_plan_maps_claims_and_reports_missing_ones(tmp_path: Path) -> None:
    spec = pod_job(
        {"name": "data", **claim("eval")},
        {"name": "ro", "persistentVolumeClaim": {"claimName": "shared", "readOnly": True}},
        {"name": "cfg", "configMap": {"name": "cm"}},
        mounts=[{"name": "data", "mountPath": "/data"}, {"name": "ro", "mountPath": "/ro", "subPath": "a/b"},
                {"name": "cfg", "mountPath": "/cfg"}],
        securityContext={"fsGroup": NONROOT},
    )  # fmt: skip
    refs = PodRefs(claims={"eval": tmp_path / "c1", "shared": tmp_path / "c2"}, config_maps={"cm": {}})
    plan = plan_pod(spec, pod_name="p", pod_dir=tmp_path / "p", refs=refs)
    assert plan.containers[0].mounts == (
        Mount(tmp_path / "c1", "/data"), Mount(tmp_path / "c2" / "a" / "b", "/ro", True),
        Mount(tmp_path / "p" / "volumes" / "cfg", "/cfg", True),
    )  # fmt: skip
    assert plan.fs_group == NONROOT and tmp_path / "c2" / "a" / "b" in plan.directories
    with pytest.raises(PlanError, match='persistentvolumeclaim "shared" not found'):
        plan_pod(spec, pod_name="p", pod_dir=tmp_path / "p", refs=PodRefs(claims={"eval": tmp_path}))
    bad = pod_job(
        {"name": "data", **claim("eval")}, mounts=[{"name": "data", "mountPath": "/d", "subPath": "../x"}]
    )
    with pytest.raises(PlanError, match="leaves its volume"):
        plan_pod(bad, pod_name="p", pod_dir=tmp_path / "p", refs=refs)


def test_plan_refuses_root_under_run_as_non_root(tmp_path: Path) -> None:
    spec = pod_job(mounts=[], securityContext={"runAsNonRoot": True, "runAsUser": 0})
    with pytest.raises(PlanError, match="breaks non-root policy"):
        plan_pod(spec, pod_name="p", pod_dir=tmp_path, runner_uid=0)
    image_user = plan_pod(pod_job(mounts=[], securityContext={"runAsNonRoot": True}), pod_name="p", pod_dir=tmp_path)
    assert image_user.containers[0].security == Security(non_root=True)
    assert run_as(image_user.containers[0].security, 0, 0) == (65534, 65534)
    assert run_as(Security(uid=0), 0, 0) == (0, 0) and run_as(Security(), 1000, 100) == (1000, 100)


def fake_stat(modes: dict[str, tuple[int, int, int]]) -> Any:
    """A ``stat`` over an imaginary tree: ``{path: (mode, uid, gid)}``; others are 0755 root."""

    def stat_(path: Path) -> os.stat_result:
        mode, uid, gid = modes.get(str(path), (0o755, 0, 0))
        return os.stat_result((stat.S_IFDIR | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))

    return stat_


def fake_lstat(kinds: dict[str, int]) -> Any:
    """An ``lstat`` over an imaginary tree: ``{path: file type}``; others do not exist."""

    def lstat_(path: Path) -> os.stat_result:
        if str(path) not in kinds:
            raise FileNotFoundError(path)
        return os.stat_result((kinds[str(path)] | 0o755, 0, 0, 1, 0, 0, 0, 0, 0, 0))

    return lstat_


def test_the_image_is_the_base_os_the_interpreter_and_a_few_host_files() -> None:
    d, link = stat.S_IFDIR, stat.S_IFLNK
    tree = {"/usr": d, "/bin": link, "/lib64": link, "/opt/venv": d, "/opt/venv/lib": d, "/root/.pyenv/v": d,
            "/": d, "/tmp": d, "/usr/lib/python3": d, "/proc/self": d, "/etc/ssl": d,
            "/etc/ld.so.cache": stat.S_IFREG, "/dev/null": stat.S_IFCHR}  # fmt: skip
    runtime = ["/opt/venv", "/opt/venv/lib", "/root/.pyenv/v", "/", "/tmp", "/usr/lib/python3", "/proc/self",
               "/missing", "relative"]  # fmt: skip
    image = host_image(map(Path, runtime), lstat=fake_lstat(tree), readlink=lambda p: f"usr{p}")
    stat_ = fake_stat({"/root": (0o700, 0, 0)})
    assert blocked_ancestor(Path("/root/.pyenv/v"), NONROOT, {NONROOT}, stat_) == Path("/root")  # (without a view)
    assert image.entries == (
        Bind(Path("/usr"), Path("/usr"), False), Link(Path("/bin"), "usr/bin"), Link(Path("/lib64"), "usr/lib64"),
        Bind(Path("/opt/venv"), Path("/opt/venv"), False), Bind(Path("/root/.pyenv/v"), Path("/root/.pyenv/v"), False),
        Bind(Path("/etc/ld.so.cache"), Path("/etc/ld.so.cache"), False), Bind(Path("/etc/ssl"), Path("/etc/ssl"), False),
        Bind(Path("/dev/null"), Path("/dev/null"), True),
    )  # fmt: skip  # never "/", "/tmp" or kernel trees; nothing twice


def test_view_holds_the_image_and_only_the_container_own_directories() -> None:
    workdir, pod_dir = Path("/tmp/t/jobs"), Path("/tmp/t/jobs/default/p")
    claim_dir, cfg = workdir / "default/pvc/eval/u", pod_dir / "volumes" / "cfg"
    c = ContainerPlan(
        name="main", image="", argv=("python",), env={"HOME": str(pod_dir / "tmp")}, cwd=pod_dir / "work" / "main",
        log_path=pod_dir / "main.log", termination_log=pod_dir / "termination" / "main",
        mounts=(Mount(claim_dir, "/data"), Mount(cfg, "/cfg", True)),
        security=Security(uid=NONROOT, gid=NONROOT, read_only_root=True),
    )  # fmt: skip
    image = Image((Link(Path("/bin"), "usr/bin"), Bind(Path("/usr"), Path("/usr"), False),
                   Bind(Path("/opt/venv"), Path("/opt/venv"), False), Bind(Path("/dev/null"), Path("/dev/null"), True),
                   Bind(workdir / "x", workdir / "x", False)))  # fmt: skip  # (the last: no image holds pods)
    view = plan_view(c, pod_dir=pod_dir, workdir=workdir, image=image, user=(NONROOT, NONROOT, (2000,)), hostname="h")
    assert {(b.source, b.writable, b.below) for b in view.binds} == {
        (Path("/usr"), False, None), (Path("/opt/venv"), False, None), (Path("/dev/null"), True, None),
        (claim_dir, True, workdir), (cfg, False, workdir), (pod_dir / "tmp", True, workdir),
        (pod_dir / "termination", True, workdir), (pod_dir / "work" / "main", True, workdir),
    }  # fmt: skip
    assert all(b.source == b.target for b in view.binds)  # at their host paths: path mapping holds
    tmpfs = {t.path: (t.mode, t.writable) for t in view.entries if isinstance(t, Tmpfs)}
    assert tmpfs == {Path("/tmp"): (0o1777, False), Path("/dev"): (0o755, False), Path("/dev/shm"): (0o1777, True)}
    files = {f.path.name: f.text for f in view.entries if isinstance(f, File)}
    assert files["passwd"].splitlines() == [
        "root:x:0:0:root:/root:/usr/sbin/nologin", f"podium:x:{NONROOT}:{NONROOT}:podium:{pod_dir}/tmp:/usr/sbin/nologin",
    ]  # fmt: skip
    assert files["group"].splitlines() == ["root:x:0:", "podium2000:x:2000:", f"podium:x:{NONROOT}:"]
    assert "127.0.1.1\th" in files["hosts"] and Dir(Path("/proc")) in view.entries
    depths = [len(e.target.parts if isinstance(e, Bind) else e.path.parts) for e in view.entries]
    assert depths == sorted(depths)  # parents before children
    assert view.read_only_root
    # The runner's workdir inside the image (a virtual environment holding it, say) is hidden there.
    inside = Image((Bind(Path("/tmp/t"), Path("/tmp/t"), False),))
    hidden = plan_view(c, pod_dir=pod_dir, workdir=workdir, image=inside, user=(NONROOT, NONROOT, ()))
    assert Tmpfs(workdir, 0o755, False) in hidden.entries
    elsewhere = plan_view(replace(c, cwd=Path("/app")), pod_dir=pod_dir, workdir=workdir, image=image,
                          user=(NONROOT, NONROOT, ()))  # fmt: skip
    assert Dir(Path("/app")) in elsewhere.entries  # an empty working directory, not the host's


# --- The shell around them ---------------------------------------------------------------------


def container(tmp_path: Path, security: Security) -> tuple[ContainerPlan, PodPlan]:
    c = ContainerPlan(
        name="main", image="", argv=("python", "-V"), env={}, cwd=tmp_path, log_path=tmp_path / "l",
        termination_log=tmp_path / "t" / "main", security=security,
    )  # fmt: skip
    return c, PodPlan("default", "p", tmp_path, {}, (), (c,))


def test_a_restriction_that_cannot_be_enforced_is_logged_and_the_container_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unsupported = {**{r: "not on this test's machine" for r in CHECKS}, "mode": "none"}
    with caplog.at_level(logging.INFO):
        confiner = Confiner(tmp_path, unsupported)
        c, pod = container(tmp_path, Security(uid=NONROOT, gid=NONROOT, no_network=True))
        with pytest.raises(SandboxUnavailable, match=r"user \(not on.*network \(not on.*mounts \(not on"):
            confiner.prepare(pod)  # the pod fails before anything of it runs
        assert "refuse" in (confiner.sandbox_spec(c, pod) or {})
        with pytest.raises(SandboxUnavailable):
            confiner.command(c, pod)  # and its containers never start, should they get that far
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot be enforced on this machine" in m for m in messages) == 4
    assert f"Local {describe(confiner.support)}" in messages
    assert describe(confiner.support).startswith("sandbox mode none (")


@pytest.mark.skipif(os.geteuid() != 0, reason="the image user is nobody only under a root runner")
def test_the_image_user_is_best_effort_and_everything_asked_for_fails_closed(tmp_path: Path) -> None:
    no_user = {**dict.fromkeys(CHECKS, None), "user": "cannot switch", "mounts": "no namespaces", "mode": "root"}
    confiner = Confiner(tmp_path, no_user)
    asked_nothing = confiner.decide(Security())
    assert (asked_nothing.uid, asked_nothing.refused, asked_nothing.enforced) == (0, None, ())
    assert "runs as the runner's user" in str(asked_nothing.note)
    assert "runAsNonRoot" in str(confiner.decide(Security(non_root=True)).refused)
    refused = str(confiner.decide(Security(uid=NONROOT, gid=NONROOT)).refused)
    assert "user (cannot switch)" in refused and "mounts (no namespaces)" in refused
    assert confiner.decide(Security(uid=0, gid=0, no_network=True)).enforced == ("network",)
    everything = Confiner(tmp_path, {**dict.fromkeys(CHECKS, None), "mode": "root"})
    assert everything.decide(Security()).enforced == ("user", "mounts")  # nobody, confined
    assert describe(everything.support).endswith("every restriction is enforced")


def test_user_namespace_mode_maps_the_container_user_to_the_runner(tmp_path: Path) -> None:
    confiner = Confiner(tmp_path, {**dict.fromkeys(CHECKS, None), "mode": "userns"})
    c, pod = container(tmp_path, Security(uid=NONROOT, gid=NONROOT, groups=(2000,), read_only_root=True))
    spec = confiner.sandbox_spec(c, pod)
    assert spec is not None and spec["userns"] == [os.geteuid(), os.getegid()]
    assert spec["isolate"] and spec["read_only_root"] and spec["user"] == [NONROOT, NONROOT, [2000]]
    kinds = {entry[0] for entry in spec["root"]}
    assert kinds <= {"bind", "tmpfs", "link", "file", "dir"} and {"bind", "tmpfs", "file"} <= kinds
    plain, _ = container(tmp_path, Security(uid=os.geteuid(), gid=os.getegid()))
    assert confiner.sandbox_spec(plain, pod) is None  # the runner's own user, asking for nothing


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group needs root")
def test_fs_group_is_applied_like_the_kubelet_and_never_through_links(tmp_path: Path) -> None:
    volume = tmp_path / "v"
    (volume / "out").mkdir(parents=True)
    (volume / "out" / "f").write_text("x")
    os.chmod(volume / "out", 0o755)
    os.chmod(volume / "out" / "f", 0o644)
    outside = tmp_path / "outside"
    outside.write_text("host file")
    os.chmod(outside, 0o600)
    (volume / "link").symlink_to(outside)
    apply_fs_group(volume, NONROOT)
    for path, mode in ((volume, 0o2770), (volume / "out", 0o2775), (volume / "out" / "f", 0o664)):
        info = path.stat()
        assert (info.st_gid, stat.S_IMODE(info.st_mode) & mode) == (NONROOT, mode)
    assert (outside.stat().st_gid, stat.S_IMODE(outside.stat().st_mode)) == (0, 0o600)


# --- Real sandboxed Jobs: one untrusted pod attacking its neighbours -----------------------------

ATTACK = r"""
import base64, json, os, socket, sys
t = json.loads(base64.b64decode(sys.argv[1]))
t["write"].update(json.loads(sys.argv[2]))
t["read"]["own log"] = t["own_log"].format(pod=os.environ["HOSTNAME"])

def attempt(action, path):
    try:
        return action(path)
    except OSError as e:
        return type(e).__name__

def read(path):
    return open(path, "rb").read().decode(errors="replace")

seen = {"uid": os.getuid(), "gid": os.getgid(), "env": sorted(os.environ)}
seen["read"] = {k: attempt(read, p) for k, p in t["read"].items()}
seen["list"] = {k: attempt(os.listdir, p) for k, p in t["list"].items()}
seen["write"] = {k: attempt(lambda q: open(q, "w").write("x") and "written", p) for k, p in t["write"].items()}
seen["pids"] = [p for p in os.listdir("/proc") if p.isdigit()]
seen["stolen"] = [  # through other processes: their environment and their view of the files
    leak for pid in seen["pids"]
    for leak in (f"/proc/{pid}/environ", *(f"/proc/{pid}/root{p}" for p in t["read"].values()))
    if t["marker"] in str(attempt(read, leak))
]
try:
    socket.create_connection(("127.0.0.1", t["port"]), timeout=3).close()
    seen["connect"] = "connected"
except OSError as e:
    seen["connect"] = type(e).__name__
json.dump(seen, open("/out/report.json", "w"))
"""

HOLD = (
    "import os, time\n"
    "for path in ('/scratch/labels.csv', '/data/labels.csv'):\n"
    "    open(path, 'w').write(os.environ['HOLDER_SECRET'])\n"
    "time.sleep(60)\n"
)
MARKER = "label-7f3a9c"


class Listener:
    """A server counting the connections it accepts: TCP on 127.0.0.1 unless given a listening ``server``."""

    def __init__(self, server: socket.socket | None = None) -> None:
        self.server = server or socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1] if server is None else 0
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@dataclass
class Attack:
    seen: dict[str, Any]  # what the untrusted pod saw, by target label
    workdir: Path
    support: dict[str, str | None]
    holder_pod: str
    host_tmp_file: str
    trusted_log: str
    listener: Listener


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attack]:
    """A holder pod (uid 65532, a secret in its volumes and env) runs; then, concurrently, an
    untrusted pod (the operator's predict pod) tries to reach it, and a trusted pod connects."""
    workdir = tmp_path_factory.mktemp("attack") / "jobs"
    (workdir / "default").mkdir(parents=True)
    (workdir / "secret.txt").write_text(MARKER)
    os.chmod(workdir / "secret.txt", 0o600)
    (workdir / "default" / "readable.txt").write_text(MARKER)  # 0644: only hiding protects it
    writable = Path(tempfile.mkdtemp(prefix="podium-sandbox-", dir="/var/tmp"))  # outside any volume
    os.chmod(writable, 0o1777)
    fd, host_tmp_file = tempfile.mkstemp(prefix="podium-sandbox-", dir="/tmp")  # 0600, root's
    os.write(fd, MARKER.encode())
    os.close(fd)
    listener = Listener()
    try:
        with pytest.MonkeyPatch.context() as env, ApiServer() as server, make_api_client(server) as client:
            env.setenv("AWS_SECRET_ACCESS_KEY", "runner-aws-secret")
            env.setenv("PODIUM_TEST_SECRET", "runner-podium-secret")
            env.setenv("KUBECONFIG", "/root/.kube/config")
            env.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
            cluster = Cluster(client)
            deny_sandbox_traffic(client)
            for name in ("labels", "attack"):
                create_claim(cluster, name)
            # No base_env: pods start from the runner's own environment, secrets included.
            with JobRunner(server.url, workdir, max_parallel=3, max_grace=0.5) as runner:
                pod_security = {"runAsNonRoot": True, "fsGroup": NONROOT}
                cluster.create(job(
                    "holder", HOLD, pod_security=pod_security, security=restricted(),
                    volumes={"/scratch": empty_dir(), "/data": claim("labels"), "/tmp": empty_dir()},
                    env={"HOLDER_SECRET": MARKER},
                ))  # fmt: skip
                holder = wait_for(lambda: cluster.pods("holder") or None)[0]["metadata"]["name"]
                scratch = runner.pod_dir("default", holder) / "volumes" / "v0" / "labels.csv"
                wait_for(lambda: scratch.exists() and list(workdir.glob("default/pvc/labels/*/labels.csv")))
                (held_claim,) = workdir.glob("default/pvc/labels/*/labels.csv")
                targets = {
                    "marker": MARKER,
                    "port": listener.port,
                    "own_log": f"{workdir}/default/{{pod}}/main.log",
                    "read": {"neighbour's emptyDir": str(scratch), "neighbour's claim": str(held_claim),
                             "runner's root-only file": str(workdir / "secret.txt"),
                             "runner's readable file": str(workdir / "default" / "readable.txt"),
                             "host /tmp file": host_tmp_file, "token": TOKEN},
                    "list": {"workdir": str(workdir), "namespace": str(workdir / "default"), "/tmp": "/tmp"},
                    "write": {"outside volumes": str(writable / "evil"), "workdir": str(workdir / "evil"),
                              "neighbour's emptyDir": str(scratch.parent / "evil")},
                }  # fmt: skip
                # Encoded: path mapping must not rewrite these host paths (the pod mounts /tmp) …
                encoded = base64.b64encode(json.dumps(targets).encode()).decode()
                own = json.dumps({"own claim": "/data/mine", "own emptyDir": "/tmp/mine"})  # … but these, yes
                cluster.create(job(
                    "attack", ATTACK, encoded, own, labels=SANDBOX_LABEL, pod_security=pod_security,
                    security=restricted(), volumes={"/tmp": empty_dir(), "/data": claim("attack"), "/out": empty_dir()},
                ))  # fmt: skip
                connect = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3); print('connected')"  # fmt: skip
                cluster.create(job("trusted", connect, str(listener.port)))
                for name in ("attack", "trusted"):
                    cluster.finished(name)
                attacker = only_pod(cluster, "attack")
                report = runner.pod_dir("default", attacker) / "volumes" / "v2" / "report.json"
                assert report.exists(), runner.logs("default", attacker, "main")
                yield Attack(
                    seen=json.loads(report.read_text()),
                    workdir=workdir,
                    support=runner.sandbox_support(),
                    holder_pod=holder,
                    host_tmp_file=host_tmp_file,
                    trusted_log=runner.logs("default", only_pod(cluster, "trusted"), "main"),
                    listener=listener,
                )
    finally:
        listener.close()
        (writable / "evil").unlink(missing_ok=True)
        writable.rmdir()
        os.unlink(host_tmp_file)


def test_untrusted_pod_sees_no_runner_credentials(attack: Attack) -> None:
    env = attack.seen["env"]
    assert not [k for k in env if k.startswith(("AWS_", "KUBE")) or k == "PODIUM_TEST_SECRET"], env
    assert set(env) <= {
        "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "HOME", "HOSTNAME", "TMPDIR",
        "PODIUM_TERMINATION_LOG",
    }  # fmt: skip


def test_credentials_never_pass_even_in_an_explicit_base_env(
    cluster: Cluster, api_server: ApiServer, tmp_path: Path
) -> None:
    base_env = runner_env(AWS_SECRET_ACCESS_KEY="s", PODIUM_TOKEN="t", KUBECONFIG="k", PYTHONHASHSEED="0")
    with JobRunner(api_server.url, tmp_path / "jobs", base_env=base_env) as r:
        log = run(cluster, r, job("env", "import json, os; print(json.dumps(sorted(os.environ)))"))
    assert json.loads(log) == [
        "HOME",
        "HOSTNAME",
        "LANG",
        "PATH",
        "PODIUM_TERMINATION_LOG",
        "PYTHONHASHSEED",
        "TMPDIR",
    ]


def test_untrusted_pod_has_no_service_account_token(attack: Attack) -> None:
    assert attack.seen["read"]["token"] == "FileNotFoundError"


def test_untrusted_pod_runs_as_its_user(attack: Attack) -> None:
    require(attack.support, "user")
    assert (attack.seen["uid"], attack.seen["gid"]) == (NONROOT, NONROOT)


def test_untrusted_pod_cannot_reach_other_pods_or_the_runner(attack: Attack) -> None:
    require(attack.support, "user", "mounts")
    seen = attack.seen
    assert set(seen["read"].values()) <= {"FileNotFoundError", "PermissionError"}, seen["read"]
    assert seen["stolen"] == [] and seen["pids"] == ["1"]  # alone in its PID namespace
    # Only the skeleton leading to its own directories is left of the workdir and /tmp.
    assert seen["list"]["workdir"] == ["default"]
    assert (
        attack.holder_pod not in seen["list"]["namespace"] and "readable.txt" not in seen["list"]["namespace"]
    )
    assert Path(attack.host_tmp_file).name not in seen["list"]["/tmp"]
    assert seen["write"]["neighbour's emptyDir"] == "FileNotFoundError"


def test_untrusted_pod_has_no_network_but_a_trusted_one_does(attack: Attack) -> None:
    assert attack.trusted_log == "connected\n"  # the policy selects the sandbox label only
    require(attack.support, "network")
    assert attack.seen["connect"] != "connected"
    wait_for(lambda: attack.listener.accepted >= 1)
    assert attack.listener.accepted == 1


def test_untrusted_pod_writes_only_its_volumes(attack: Attack) -> None:
    require(attack.support, "user", "mounts", "readonly_root")
    writes = attack.seen["write"]
    assert [k for k, v in writes.items() if v == "written"] == ["own claim", "own emptyDir"], writes


def test_directories_keep_pods_apart_even_without_private_mounts(attack: Attack) -> None:
    def mode_and_owner(path: Path) -> tuple[int, int, int]:
        info = path.stat()
        return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid

    switched = attack.support["user"] is None  # owners change only when users do
    group = NONROOT if switched else os.getegid()
    pod_dir = attack.workdir / "default" / attack.holder_pod
    assert mode_and_owner(attack.workdir)[0] == mode_and_owner(attack.workdir / "default")[0] == 0o711
    assert mode_and_owner(pod_dir) == (0o710, os.geteuid(), group)  # its users pass, but cannot list
    assert mode_and_owner(pod_dir / "main.log") == (0o600, os.geteuid(), os.getegid())
    for sub in ("tmp", "termination", "work/main", "volumes/v0"):
        assert mode_and_owner(pod_dir / sub) == (0o2770, os.geteuid(), group), sub
    (claim_dir,) = (attack.workdir / "default" / "pvc" / "labels").iterdir()
    assert mode_and_owner(claim_dir) == (
        0o2770 if switched else 0o770,
        os.geteuid(),
        group,
    )  # fsGroup applied


# --- Real Jobs: claims -------------------------------------------------------------------------


@pytest.fixture
def cluster(api_client: kubernetes.client.ApiClient) -> Cluster:
    return Cluster(api_client)


@pytest.fixture
def runner(api_server: ApiServer, tmp_path: Path) -> Iterator[JobRunner]:
    with JobRunner(api_server.url, tmp_path / "jobs", base_env=runner_env(), max_grace=0.5) as r:
        yield r


def run(cluster: Cluster, runner: JobRunner, manifest: dict[str, Any]) -> str:
    """Run a Job to its end; its log, or the failure's message."""
    name = manifest["metadata"]["name"]
    cluster.create(manifest)
    j = cluster.finished(name)
    (pod,) = cluster.pods(name)
    if not any(c["type"] == "Complete" and c["status"] == "True" for c in j["status"]["conditions"]):
        return f"failed: {pod['status'].get('message')}"
    return runner.logs("default", pod["metadata"]["name"], "main")


def test_claim_is_shared_by_sequential_jobs(cluster: Cluster, runner: JobRunner) -> None:
    create_claim(cluster, "eval")
    data = {"/data": claim("eval")}
    stage = "open('/data/features.csv', 'w').write('1,2,3')"
    predict = (
        "import os; xs = open('/data/features.csv').read().split(','); os.makedirs('/data/out');"
        "open('/data/out/predictions.csv', 'w').write(str(sum(map(int, xs)))); print(os.getuid())"
    )
    score = "print(open('/data/out/predictions.csv').read())"
    pod_security = {"runAsNonRoot": True, "fsGroup": NONROOT}
    # Each step is another user (the image user, nobody, for stage and score): fsGroup lets them share.
    assert run(cluster, runner, job("stage", stage, volumes=data, pod_security={"fsGroup": NONROOT})) == ""
    uid = run(cluster, runner, job(
        "predict", predict, labels=SANDBOX_LABEL, pod_security=pod_security, security=restricted(),
        volumes={**data, "/tmp": empty_dir()},
    ))  # fmt: skip
    assert uid == f"{NONROOT if runner.sandbox_support()['user'] is None else os.geteuid()}\n"
    assert run(cluster, runner, job("score", score, volumes=data, pod_security={"fsGroup": NONROOT})) == "6\n"


def test_fs_group_lets_a_non_root_user_write_what_a_root_pod_created(
    cluster: Cluster, runner: JobRunner
) -> None:
    require(runner.sandbox_support(), "user")
    create_claim(cluster, "eval")
    data = {"/data": claim("eval")}
    root = "import os; os.makedirs('/data/out'); open('/data/out/old.txt', 'w').write('root\\n')"
    append = (
        "try:\n"
        "    open('/data/out/old.txt', 'a').write('user\\n'); open('/data/out/new.txt', 'w').write('new')\n"
        "    print('wrote')\n"
        "except PermissionError:\n"
        "    print('denied')\n"
    )
    assert run(cluster, runner, job("root", root, security={"runAsUser": 0}, volumes=data)) == ""
    security = {"runAsUser": NONROOT, "runAsGroup": NONROOT}
    assert run(cluster, runner, job("no-fs-group", append, security=security, volumes=data)) == "denied\n"
    with_fs_group = job(
        "fs-group", append, security=security, pod_security={"fsGroup": NONROOT}, volumes=data
    )
    assert run(cluster, runner, with_fs_group) == "wrote\n"


def test_missing_claim_fails_the_pod_clearly(cluster: Cluster, runner: JobRunner) -> None:
    message = run(cluster, runner, job("orphan", "pass", volumes={"/data": claim("nope")}))
    assert message == 'failed: persistentvolumeclaim "nope" not found'


def test_a_recreated_claim_starts_empty(cluster: Cluster, runner: JobRunner) -> None:
    create_claim(cluster, "eval")
    check = "import os; print(os.path.exists('/data/f')); open('/data/f', 'w').write('x')"
    shared = {"fsGroup": NONROOT}  # (a claim is the runner's: without it, the image user may not write it)
    assert run(cluster, runner, job("first", check, pod_security=shared, volumes={"/data": claim("eval")})) == "False\n"
    assert run(cluster, runner, job("second", check, pod_security=shared, volumes={"/data": claim("eval")})) == "True\n"
    (old_volume,) = (runner.workdir / "default" / "pvc" / "eval").iterdir()
    cluster.core.delete_namespaced_persistent_volume_claim("eval", "default")
    create_claim(cluster, "eval")
    assert run(cluster, runner, job("third", check, pod_security=shared, volumes={"/data": claim("eval")})) == "False\n"
    # The next Job's start frees the deleted claim's directory, as a cluster frees its volume.
    assert not old_volume.exists() and len(list(old_volume.parent.iterdir())) == 1


def test_a_sandboxed_pod_dies_whole_at_its_deadline(cluster: Cluster, runner: JobRunner) -> None:
    require(runner.sandbox_support(), "mounts")
    marker = "podium-sandbox-orphan-3c1d"
    code = (
        "import subprocess, sys, time\n"  # a child leaving the process group: the PID namespace still ends it
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]], start_new_session=True)\n"
        "time.sleep(60)\n"
    )
    manifest = job("doomed", code, marker, security=restricted(), pod_security={"fsGroup": NONROOT})
    manifest["spec"]["activeDeadlineSeconds"] = 1
    assert run(cluster, runner, manifest).startswith("failed:")
    assert cluster.job("doomed")["status"]["conditions"][-1]["reason"] == "DeadlineExceeded"

    def marked() -> list[str]:
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if marker.encode() in cmdline.read_bytes():
                    found.append(cmdline.parent.name)
            except OSError:
                continue
        return found

    wait_for(lambda: marked() == [], timeout=5)


def test_a_termination_message_is_never_read_through_a_link(cluster: Cluster, runner: JobRunner) -> None:
    code = "import os; os.symlink('/etc/passwd', os.environ['PODIUM_TERMINATION_LOG'])"
    cluster.create(job("sneaky", code))
    cluster.finished("sneaky")
    (pod,) = cluster.pods("sneaky")
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["reason"] == "Completed" and "message" not in state
