"""Local mode's resource limits, attacked by an untrusted pod (the predict step's sandbox).

A kubelet bounds what one pod can take from its node: processes (``podPidsLimit``), the space
and files of its volumes (a claim's ``resources.requests.storage``, an emptyDir's
``sizeLimit``), and it never stalls while preparing one pod. Each test plays the pod that tries
anyway, against real processes and the HTTP API emulator. A limit this machine cannot enforce
is skipped with the reason from ``JobRunner.sandbox_support()``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.sandbox.fs import TooManyFiles, apply_fs_group
from tests.local.conftest import make_api_client
from tests.local.test_jobrunner import Cluster, wait_for
from tests.local.test_sandbox import NONROOT, SANDBOX_LABEL, claim, job, restricted, runner_env

MiB = 1 << 20
STAGE = {"pod_security": {"fsGroup": NONROOT}}  # a trusted step writing into a claim (whoever it runs as)
ATTACKER = {"labels": SANDBOX_LABEL, "pod_security": {"runAsNonRoot": True, "fsGroup": NONROOT}, "security": restricted()}


# --- Harness -----------------------------------------------------------------------------------


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    with ApiServer() as server:
        yield server


@pytest.fixture
def cluster(api_server: ApiServer) -> Iterator[Cluster]:
    with make_api_client(api_server) as client:
        yield Cluster(client)


def start_runner(api_server: ApiServer, workdir: Path, **settings: Any) -> JobRunner:
    return JobRunner(api_server.url, workdir, base_env=runner_env(), max_grace=0.5, **settings)


@pytest.fixture
def runner(api_server: ApiServer, tmp_path: Path) -> Iterator[JobRunner]:
    with start_runner(api_server, tmp_path / "jobs") as r:
        yield r
    assert mounts_below(tmp_path) == [], "the runner left file systems mounted"


@pytest.fixture(params=["ext4", "tmpfs"])
def sized(api_server: ApiServer, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[JobRunner]:
    """A runner enforcing sizes with each backend this machine allows."""
    with start_runner(api_server, tmp_path / "jobs", volume_filesystems=request.param) as r:
        require(r, "disk")
        yield r
    assert mounts_below(tmp_path) == [], "the runner left file systems mounted"


def require(runner: JobRunner, limit: str) -> None:
    reason = runner.sandbox_support().get(limit)  # (absent: the runner claims nothing, so test it)
    if reason is not None:
        pytest.skip(f"{limit} limits are not enforced on this machine: {reason}")


def create_claim(cluster: Cluster, name: str, storage: str) -> str:
    body = {"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}}  # fmt: skip
    created = cluster.core.create_namespaced_persistent_volume_claim("default", body)  # type: ignore[arg-type]
    return str(created.metadata.uid)


def finish(cluster: Cluster, runner: JobRunner, manifest: dict[str, Any], timeout: float = 60) -> tuple[str, str]:
    """Run a Job to its end: its pod's name and log."""
    name = manifest["metadata"]["name"]
    cluster.create(manifest)
    cluster.finished(name, timeout)
    (pod,) = cluster.pods(name)
    pod_name = pod["metadata"]["name"]
    return pod_name, runner.logs("default", pod_name, "main")


def report(log: str) -> dict[str, Any]:
    """The attack's JSON report: the last line of its log."""
    lines = log.strip().splitlines()
    assert lines, "the attack printed nothing"
    return dict(json.loads(lines[-1]))


def mounts_below(root: Path) -> list[str]:
    """Mount points at or below ``root`` in this (the runner's) mount namespace."""
    prefix = str(root.resolve())
    with open("/proc/self/mountinfo") as f:
        points = [line.split(" ")[4].encode().decode("unicode_escape") for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def host_bytes(root: Path) -> int:
    """Space used on ``root``'s own file system by the files below it (other mounts excluded)."""
    os.sync()  # what the pod wrote is on its way to the disk
    device, used = root.stat().st_dev, 0
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(directory, d)).st_dev == device]
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            used += info.st_blocks * 512 if info.st_dev == device else 0
    return used


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def marked_processes(marker: str) -> int:
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            count += marker.encode() in cmdline.read_bytes()
        except OSError:
            continue
    return count


# --- Processes: a fork bomb ---------------------------------------------------------------------

# Forks sleeping children until a fork fails or ``attempts`` succeed, reports, waits for the
# test to count them from the host, then reaps them. Bounded: it never tries more than asked.
FORK_BOMB = r"""
import errno, json, os, signal, sys, time
out, attempts = sys.argv[1], int(sys.argv[2])
children, failure = [], None
for _ in range(attempts):
    try:
        pid = os.fork()
    except OSError as e:
        failure = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
json.dump({"spawned": len(children), "error": failure}, open(out + "/report.tmp", "w"))
os.rename(out + "/report.tmp", out + "/report.json")
deadline = time.monotonic() + 30
while not os.path.exists(out + "/go") and time.monotonic() < deadline:
    time.sleep(0.05)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
"""


def fork_bomb(cluster: Cluster, runner: JobRunner, name: str, attempts: int) -> tuple[dict[str, Any], int]:
    """Run the fork bomb as the attacker's pod: its report, and its processes as the host counts them."""
    marker = f"podium-fork-bomb-{name}-{os.getpid()}"
    cluster.create(job(name, FORK_BOMB, "/out", str(attempts), marker, volumes={"/out": {"emptyDir": {}}}, **ATTACKER))
    pod = wait_for(lambda: cluster.pods(name) or None)[0]["metadata"]["name"]
    out = runner.pod_dir("default", pod) / "volumes" / "v0"
    try:
        wait_for(lambda: (out / "report.json").exists(), timeout=60)
        seen = json.loads((out / "report.json").read_text())
        on_host = marked_processes(marker)
    finally:
        if out.is_dir():
            (out / "go").touch()
    cluster.finished(name, timeout=60)
    wait_for(lambda: marked_processes(marker) == 0, timeout=10)
    return seen, on_host


def test_a_fork_bomb_is_stopped_at_the_default_pids_limit(cluster: Cluster, runner: JobRunner) -> None:
    require(runner, "pids")
    seen, on_host = fork_bomb(cluster, runner, "bomb", attempts=2000)
    limit = 1024  # the runner's default, a kubelet's usual podPidsLimit
    assert seen["error"] == "EAGAIN" and seen["spawned"] < limit, seen
    assert seen["spawned"] >= limit - 16, seen  # stopped by the limit, not by something else
    assert on_host <= limit, on_host


@pytest.mark.parametrize("cgroups", [True, False], ids=["pids-cgroup", "rlimit-nproc"])
def test_the_pids_limit_is_a_runner_setting(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path, cgroups: bool
) -> None:
    with start_runner(api_server, tmp_path / "jobs", pids_limit=48, pids_cgroups=cgroups) as runner:
        mechanism = runner.pids_limits
        if cgroups:
            require(runner, "pids")
            assert mechanism.startswith("cgroup v"), mechanism
        else:
            assert mechanism.startswith("RLIMIT_NPROC"), mechanism
            if runner.sandbox_support()["user"] is not None:
                pytest.skip(f"RLIMIT_NPROC needs a non-root container user: {runner.sandbox_support()['user']}")
        seen, on_host = fork_bomb(cluster, runner, "small-bomb", attempts=400)
    # RLIMIT_NPROC counts the user's processes host-wide: other pods of that user take from it.
    assert seen["error"] == "EAGAIN" and seen["spawned"] < 48, seen
    assert on_host <= 48 + (not cgroups), on_host  # (+ the sandbox's own root process, which no rlimit counts)


# --- Disk: space and files ----------------------------------------------------------------------

# Writes ``limit`` bytes (in flushed MiB chunks) or fails trying; reports the errno.
FILL = r"""
import errno, json, os, sys
path, goal = sys.argv[1], int(sys.argv[2])
written, failure = 0, None
chunk = b"x" * (1 << 20)
try:
    with open(path, "wb") as f:
        while written < goal:
            f.write(chunk)
            f.flush()
            written += len(chunk)
        os.fsync(f.fileno())
except OSError as e:
    failure = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps({"written": written, "error": failure}))
"""


def test_writing_past_a_claim_storage_request_fails_with_enospc(
    cluster: Cluster, sized: JobRunner, tmp_path: Path
) -> None:
    runner = sized
    create_claim(cluster, "small", "64Mi")
    free_before, used_before = free_bytes(tmp_path), host_bytes(tmp_path)
    _, log = finish(cluster, runner, job("fill-claim", FILL, "/data/fill", str(192 * MiB),
                                          volumes={"/data": claim("small")}, **ATTACKER))  # fmt: skip
    seen = report(log)
    assert seen["error"] == "ENOSPC" and seen["written"] <= 64 * MiB, seen
    assert host_bytes(tmp_path) - used_before <= 72 * MiB  # the claim's own space at most
    assert free_before - free_bytes(tmp_path) <= 64 * MiB + 64 * MiB  # (others share this disk)


def test_writing_past_an_empty_dir_size_limit_fails_with_enospc(
    cluster: Cluster, sized: JobRunner, tmp_path: Path
) -> None:
    runner = sized
    free_before, used_before = free_bytes(tmp_path), host_bytes(tmp_path)
    scratch = {"emptyDir": {"sizeLimit": "32Mi"}}
    _, log = finish(cluster, runner, job("fill-scratch", FILL, "/scratch/fill", str(128 * MiB),
                                          volumes={"/scratch": scratch}, **ATTACKER))  # fmt: skip
    seen = report(log)
    assert seen["error"] == "ENOSPC" and seen["written"] <= 32 * MiB, seen
    assert host_bytes(tmp_path) - used_before <= 40 * MiB
    assert free_before - free_bytes(tmp_path) <= 32 * MiB + 64 * MiB


# Creates up to ``n`` empty files; reports how many and the errno that stopped it.
MANY_FILES = r"""
import errno, json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
made, failure = 0, None
try:
    while made < n:
        os.close(os.open(os.path.join(root, f"f{made}"), os.O_CREAT | os.O_WRONLY, 0o600))
        made += 1
except OSError as e:
    failure = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps({"made": made, "error": failure}))
"""


def test_creating_more_files_than_a_volume_holds_fails(cluster: Cluster, sized: JobRunner) -> None:
    create_claim(cluster, "tiny", "64Mi")  # as many files as a default ext4 volume of 64 MiB holds: 4096
    _, log = finish(cluster, sized, job("files", MANY_FILES, "/data", "20000",
                                         volumes={"/data": claim("tiny")}, **ATTACKER))  # fmt: skip
    seen = report(log)
    assert seen["error"] == "ENOSPC" and 4000 <= seen["made"] < 4096, seen  # (the volume's root is one of them)
    # Full, the claim is still usable: the next pod's fsGroup walk finds no more than its size allows.
    _, log = finish(cluster, sized, job("next", "print('ok')", volumes={"/data": claim("tiny")}, **ATTACKER))
    assert log == "ok\n"


def test_without_sized_file_systems_the_fs_group_walk_still_refuses_too_many_files(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    with start_runner(api_server, tmp_path / "jobs", volume_filesystems="off") as runner:
        assert runner.sandbox_support()["disk"] == "volume size limits turned off" and runner.disk_limits.startswith("none")
        if runner.sandbox_support()["user"] is not None:
            pytest.skip(f"fsGroup is applied only when users switch: {runner.sandbox_support()['user']}")
        create_claim(cluster, "unenforced", "1Mi")  # a volume of 1 MiB holds 64 files
        _, log = finish(cluster, runner, job("stage", MANY_FILES, "/data", "200", volumes={"/data": claim("unenforced")},
                                             **STAGE))  # fmt: skip
        assert report(log) == {"made": 200, "error": None}  # (nothing stops the writing here)
        cluster.create(job("predict", "print('ok')", volumes={"/data": claim("unenforced")}, **ATTACKER))
        cluster.finished("predict")
        (pod,) = cluster.pods("predict")
    assert pod["status"]["phase"] == "Failed"
    assert "holds more than 64 files" in pod["status"]["message"], pod["status"]["message"]


def test_the_fs_group_walk_stops_past_its_cap(tmp_path: Path) -> None:
    volume = tmp_path / "v"
    (volume / "sub").mkdir(parents=True)
    for i in range(10):
        (volume / "sub" / str(i)).touch()
    apply_fs_group(volume, os.getegid(), max_files=12)  # v, sub and sub's 10 files
    with pytest.raises(TooManyFiles, match="more than 11 files"):
        apply_fs_group(volume, os.getegid(), max_files=11)


# --- The event loop: preparing a claim full of files --------------------------------------------


class Heartbeat:
    """A coroutine in the runner's event loop measuring how late its ticks are."""

    def __init__(self, runner: JobRunner, tick: float = 0.02) -> None:
        assert runner._loop is not None
        self.worst = 0.0
        self.ticks = 0
        self._stop = threading.Event()
        self._future = asyncio.run_coroutine_threadsafe(self._beat(tick), runner._loop)

    async def _beat(self, tick: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            start = loop.time()
            await asyncio.sleep(tick)
            self.worst = max(self.worst, loop.time() - start - tick)
            self.ticks += 1

    def stop(self) -> float:
        self._stop.set()
        self._future.result(timeout=5)
        return self.worst


def test_preparing_a_claim_with_many_files_does_not_stall_the_runner(cluster: Cluster, runner: JobRunner) -> None:
    create_claim(cluster, "crowded", "4Gi")
    _, log = finish(cluster, runner, job("stage", MANY_FILES, "/data", "150000", volumes={"/data": claim("crowded")},
                                         **STAGE), timeout=120)  # fmt: skip
    assert report(log) == {"made": 150000, "error": None}
    heartbeat = Heartbeat(runner)
    try:  # fsGroup: the runner changes the group of every file in the claim before the pod starts
        _, log = finish(cluster, runner, job("predict", "print('ok')", volumes={"/data": claim("crowded")},
                                             **ATTACKER), timeout=120)  # fmt: skip
    finally:
        worst = heartbeat.stop()
    assert log == "ok\n"
    assert heartbeat.ticks > 10 and worst < 0.5, f"the runner's event loop stalled for {worst:.2f} s"


# --- Clean-up ------------------------------------------------------------------------------------


def test_a_deleted_job_leaves_no_pod_directories_or_mounts(cluster: Cluster, runner: JobRunner) -> None:
    scratch = {"emptyDir": {"sizeLimit": "16Mi"}}
    pod, _ = finish(cluster, runner, job("leftovers", "open('/scratch/f', 'w').write('x' * 4096)",
                                         volumes={"/scratch": scratch}, **ATTACKER))  # fmt: skip
    pod_dir = runner.pod_dir("default", pod)
    assert (pod_dir / "volumes" / "v0" / "f").exists()  # kept while the Job exists, as its logs are
    cluster.batch.delete_namespaced_job("leftovers", "default", propagation_policy="Background")
    wait_for(lambda: not pod_dir.exists(), timeout=10)
    assert mounts_below(pod_dir) == []


def test_a_deleted_claim_leaves_no_directory_or_mount(cluster: Cluster, runner: JobRunner) -> None:
    uid = create_claim(cluster, "gone", "16Mi")
    finish(cluster, runner, job("writer", "open('/data/f', 'w').write('x' * 4096)", volumes={"/data": claim("gone")},
                                **STAGE))  # fmt: skip
    claim_root = runner.workdir / "default" / "pvc" / "gone"
    assert (claim_root / uid / "f").exists()
    cluster.core.delete_namespaced_persistent_volume_claim("gone", "default")
    wait_for(lambda: not claim_root.exists(), timeout=10)  # without waiting for another Job to start
    assert mounts_below(claim_root.parent) == []


# --- What the runner says it enforces -------------------------------------------------------------


def test_the_support_report_names_the_mechanism_or_why_none(runner: JobRunner) -> None:
    support = runner.sandbox_support()
    assert {"pids", "disk"} <= set(support)
    for limit, mechanism in (("pids", runner.pids_limits), ("disk", runner.disk_limits)):
        assert isinstance(mechanism, str) and mechanism
        if support[limit] is not None:
            assert support[limit] in mechanism or support[limit] == mechanism, (limit, mechanism)

