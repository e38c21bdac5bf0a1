"""The local job runner: pure planning/status functions, then real Jobs run as real processes
against the HTTP API emulator (no mocks)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.jobrunner.status import (
    ContainerInfo,
    Running,
    Terminated,
    Verdict,
    Waiting,
    exit_code,
    job_status,
    job_verdict,
    log_tail,
    pod_phase,
    pod_status,
    termination_message,
)
from podium_operator.local.podspec.manifests import (
    claim_storage,
    pod_manifest,
    referenced_objects,
    secret_data,
)
from podium_operator.local.podspec.plan import (
    ContainerPlan,
    PlanError,
    PodRefs,
    expand_vars,
    parse_quantity,
    path_mapper,
    plan_pod,
)

PY = sys.executable
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def job(
    name: str = "j", *containers: dict[str, Any], init: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": list(containers)}
    if init:
        pod_spec["initContainers"] = init
    volumes = spec.pop("volumes", None)
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "uid": "uid-1"},
        "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": pod_spec}, **spec},
    }


def py(code: str, name: str = "main", **extra: Any) -> dict[str, Any]:
    """A container running Python code."""
    return {"name": name, "image": "python:3.11", "command": [PY, "-c", code], **extra}


# For a pod that writes the test's files or whose pid the test signals: root, outside any sandbox
# (a pod asking for nothing runs as nobody, in a root file system of its own).
AS_ROOT = {"securityContext": {"runAsUser": 0}}


# --- Pure: planning -----------------------------------------------------------------------------


def test_plan_maps_command_args_env_and_expands_vars(tmp_path: Path) -> None:
    c = {
        "name": "main",
        "image": "img",
        "command": ["run", "$(GREETING)"],
        "args": ["--who=$(WHO)", "$$(NOT)", "$(UNKNOWN)"],
        "env": [
            {"name": "WHO", "value": "world"},
            {"name": "GREETING", "value": "hello-$(WHO)"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "resources": {"limits": {"memory": "64Mi", "cpu": "2"}},
    }
    plan = plan_pod(job("j", c), pod_name="j-abcde", pod_dir=tmp_path, base_env={"PATH": "/bin"})
    (main,) = plan.containers
    assert main.argv == ("run", "hello-world", "--who=world", "$(NOT)", "$(UNKNOWN)")
    assert {k: main.env[k] for k in ("WHO", "GREETING", "POD", "NS", "PATH", "HOSTNAME")} == {
        "WHO": "world", "GREETING": "hello-world", "POD": "j-abcde", "NS": "default", "PATH": "/bin",
        "HOSTNAME": "j-abcde",
    }  # fmt: skip
    assert main.memory_limit == 64 * 2**20
    assert main.cwd == tmp_path / "work" / "main"
    assert main.log_path == tmp_path / "main.log"


def test_plan_maps_mount_paths_on_path_boundaries(tmp_path: Path) -> None:
    c = {
        "name": "main",
        "command": ["x", "/data/f", "/database", "/mnt/data", "'/data'", "/data/sub/y", "$(ROOT)/data"],
        "env": [{"name": "OUT", "value": "/data/out"}, {"name": "TERM_AT", "value": "/dev/termination-log"}],
        "workingDir": "/data/sub",
        "volumeMounts": [{"name": "v", "mountPath": "/data/"}, {"name": "w", "mountPath": "/data/sub"}],
    }
    plan = plan_pod(
        job("j", c, volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]),
        pod_name="p",
        pod_dir=tmp_path,
    )
    (main,) = plan.containers
    v, w = tmp_path / "volumes" / "v", tmp_path / "volumes" / "w"
    assert main.argv == ("x", f"{v}/f", "/database", "/mnt/data", f"'{v}'", f"{w}/y", "$(ROOT)/data")
    assert main.env["OUT"] == f"{v}/out"
    assert main.env["TERM_AT"] == main.env["PODIUM_TERMINATION_LOG"] == str(tmp_path / "termination" / "main")
    assert main.cwd == w
    assert set(plan.directories) >= {v, w, tmp_path / "termination", tmp_path / "tmp"}


def test_plan_does_not_map_host_paths_twice(tmp_path: Path) -> None:
    # A mount at /tmp while the pod directory itself lives under /tmp.
    c = {"name": "m", "command": ["x", "$(D)/f"], "env": [{"name": "D", "value": "/tmp"}],
         "volumeMounts": [{"name": "t", "mountPath": "/tmp"}]}  # fmt: skip
    plan = plan_pod(
        job("j", c, volumes=[{"name": "t", "emptyDir": {}}]), pod_name="p", pod_dir=Path("/tmp/w/p")
    )
    assert plan.containers[0].argv == ("x", "/tmp/w/p/volumes/t/f")


def test_plan_resolves_secrets_config_maps_and_volumes(tmp_path: Path) -> None:
    c = {
        "name": "main",
        "command": ["x"],
        "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "mode"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}},
        ],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "volumeMounts": [{"name": "creds", "mountPath": "/creds"}],
    }
    spec_job = job("j", c, volumes=[{"name": "creds", "secret": {"secretName": "s"}}])
    assert referenced_objects(spec_job["spec"]["template"]["spec"]) == ({"s", "gone"}, {"cm"})
    secret = {"data": {"password": base64.b64encode(b"hunter2").decode()}, "stringData": {"user": "me"}}
    refs = PodRefs(secrets={"s": secret_data(secret)}, config_maps={"cm": {"mode": b"fast"}})
    plan = plan_pod(spec_job, pod_name="p", pod_dir=tmp_path, refs=refs)
    env = plan.containers[0].env
    assert (env["PW"], env["MODE"], env["CM_mode"]) == ("hunter2", "fast", "fast")
    assert "OPT" not in env
    assert plan.volumes["creds"].files == {"password": b"hunter2", "user": b"me"}


@pytest.mark.parametrize(
    ("container", "volumes", "error"),
    [
        ({"name": "m", "image": "busybox"}, [], "has no command"),
        ({"name": "m", "command": ["x"], "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
         [], 'secret "s" not found'),
        ({"name": "m", "command": ["x"], "volumeMounts": [{"name": "h", "mountPath": "/h"}]},
         [{"name": "h", "hostPath": {"path": "/"}}], "unsupported type ['hostPath']"),
        ({"name": "m", "command": ["x"], "volumeMounts": [{"name": "nope", "mountPath": "/h"}]}, [], "not defined"),
    ],
)  # fmt: skip
def test_plan_errors(container: dict[str, Any], volumes: list[Any], error: str, tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=error.replace("[", r"\[").replace("]", r"\]")):
        plan_pod(job("j", container, volumes=volumes), pod_name="p", pod_dir=tmp_path)


def test_pod_manifest_labels_and_owner() -> None:
    pod = pod_manifest(job("train"), "train-x2x4z")
    meta = pod["metadata"]
    assert meta["labels"] == {
        "app": "x", "job-name": "train", "batch.kubernetes.io/job-name": "train",
        "controller-uid": "uid-1", "batch.kubernetes.io/controller-uid": "uid-1",
    }  # fmt: skip
    assert meta["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "train", "uid": "uid-1",
         "controller": True, "blockOwnerDeletion": True},
    ]  # fmt: skip
    assert "status" not in pod


@pytest.mark.parametrize(
    ("text", "value"),
    [("128974848", 128974848), ("129e6", 129000000), ("129M", 129000000), ("123Mi", 123 * 2**20),
     ("1Gi", 2**30), ("0.5Gi", 2**29), ("1k", 1000), ("500m", 1)],
)  # fmt: skip
def test_parse_quantity(text: str, value: int) -> None:
    assert parse_quantity(text) == value


def test_plan_sizes_volumes_from_size_limits_and_claim_requests(tmp_path: Path) -> None:
    c = {"name": "m", "command": ["x"], "volumeMounts": [{"name": n, "mountPath": f"/{n}"} for n in ("s", "e", "d")]}
    volumes = [{"name": "s", "emptyDir": {"sizeLimit": "32Mi"}}, {"name": "e", "emptyDir": {}},
               {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]  # fmt: skip
    claim = {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    refs = PodRefs(claims={"data": tmp_path / "claim"}, claim_sizes={"data": claim_storage(claim) or 0})
    plan = plan_pod(job("j", c, volumes=volumes), pod_name="p", pod_dir=tmp_path / "p", refs=refs)
    sizes = {name: (v.size_limit, v.max_files) for name, v in plan.volumes.items()}
    assert sizes == {"s": (32 * 2**20, 2048), "e": (None, None), "d": (2 * 2**30, 131072)}  # a file per 16 KiB
    assert claim_storage({"spec": {}}) is None
    bad = [{"name": "s", "emptyDir": {"sizeLimit": "lots"}}]
    with pytest.raises(PlanError, match="invalid quantity 'lots'"):
        plan_pod(job("j", {"name": "m", "command": ["x"]}, volumes=bad), pod_name="p", pod_dir=tmp_path)


def test_expand_vars_and_path_mapper() -> None:
    assert expand_vars("$(A)-$$(A)-$(B)", {"A": "1"}) == "1-$(A)-$(B)"
    mapper = path_mapper({"/a": Path("/host/a"), "/a/b": Path("/host/b")})
    assert mapper("/a /a/b/c /ab /x/a /a.txt") == "/host/a /host/b/c /ab /x/a /a.txt"


# --- Pure: status -------------------------------------------------------------------------------


def info(state: Any, name: str = "c") -> ContainerInfo:
    return ContainerInfo(name, "img", state)


def test_pod_phase_follows_containers() -> None:
    done, failed = Terminated(0, "Completed", NOW), Terminated(2, "Error", NOW)
    assert pod_phase([info(Running(NOW))], [info(Waiting())]) == "Pending"
    assert pod_phase([info(failed)], [info(Waiting())]) == "Failed"
    assert pod_phase([info(done)], [info(Running(NOW)), info(done)]) == "Running"
    assert pod_phase([], [info(done), info(done)]) == "Succeeded"
    assert pod_phase([], [info(done), info(failed)]) == "Failed"


def test_pod_status_shapes_like_the_kubelet() -> None:
    status = pod_status(init=[], main=[info(Running(NOW))], start_time=NOW)
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["state"] == {"running": {"startedAt": "2026-01-02T03:04:05Z"}}
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    terminated = Terminated(137, "DeadlineExceeded", NOW, started_at=NOW, signal=9)
    status = pod_status(
        init=[], main=[info(terminated)], start_time=NOW, reason="DeadlineExceeded", message="late"
    )
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "DeadlineExceeded", "late")
    assert status["containerStatuses"][0]["state"]["terminated"] == {
        "exitCode": 137, "signal": 9, "reason": "DeadlineExceeded",
        "startedAt": "2026-01-02T03:04:05Z", "finishedAt": "2026-01-02T03:04:05Z",
    }  # fmt: skip


def test_termination_message_rules() -> None:
    log = b"".join(b"line %d\n" % i for i in range(200))
    assert termination_message(b"x" * 5000, log, code=1, fallback_to_logs=True) == "x" * 4096
    assert termination_message(b"", log, code=0, fallback_to_logs=True) is None
    assert termination_message(b"", log, code=1, fallback_to_logs=False) is None
    tail = termination_message(b"", log, code=1, fallback_to_logs=True)
    assert tail is not None and tail.endswith("line 199\n") and len(tail.splitlines()) == 80
    assert len(log_tail(b"y" * 10_000)) == 2048
    assert exit_code(-9) == (137, 9) and exit_code(3) == (3, None)


@pytest.mark.parametrize(
    ("spec", "succeeded", "failed", "elapsed", "reason"),
    [
        ({}, 0, 0, 0, None),
        ({}, 1, 3, 0, "CompletionsReached"),
        ({"completions": 2}, 1, 0, 0, None),
        ({}, 0, 6, 0, None),  # the default backoffLimit is 6
        ({}, 0, 7, 0, "BackoffLimitExceeded"),
        ({"backoffLimit": 0}, 0, 1, 0, "BackoffLimitExceeded"),
        ({"activeDeadlineSeconds": 5}, 0, 0, 4, None),
        ({"activeDeadlineSeconds": 5, "backoffLimit": 0}, 0, 1, 5, "DeadlineExceeded"),
    ],
)
def test_job_verdict(
    spec: dict[str, Any], succeeded: int, failed: int, elapsed: int, reason: str | None
) -> None:
    now = NOW + timedelta(seconds=elapsed)
    verdict = job_verdict(spec, succeeded=succeeded, failed=failed, start_time=NOW, now=now)
    assert (verdict.reason if verdict else None) == reason


def test_job_status_as_a_merge_patch() -> None:
    running = job_status(start_time=NOW, active=1, succeeded=0, failed=0, now=NOW)
    assert running == {
        "startTime": "2026-01-02T03:04:05Z", "active": 1, "succeeded": None, "failed": None,
        "completionTime": None, "conditions": None,
    }  # fmt: skip
    suspended = [{"type": "Suspended", "status": "False"}]
    verdict = Verdict("Complete", "CompletionsReached", "done")
    done = job_status(
        start_time=NOW, active=0, succeeded=1, failed=1, now=NOW, verdict=verdict, conditions=suspended
    )
    assert done["active"] is None and done["completionTime"] == "2026-01-02T03:04:05Z"
    assert [(c["type"], c.get("reason")) for c in done["conditions"]] == [
        ("Suspended", None), ("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached"),
    ]  # fmt: skip
    failed = job_status(
        start_time=NOW, active=0, succeeded=0, failed=1, now=NOW,
        verdict=Verdict("Failed", "BackoffLimitExceeded", "limit"),
    )  # fmt: skip
    assert failed["completionTime"] is None
    assert [c["type"] for c in failed["conditions"]] == ["FailureTarget", "Failed"]


# --- Real Jobs, real processes ------------------------------------------------------------------


class Cluster:
    """Test-side view of the API: create Jobs, read them back as plain dicts, wait."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.batch = kubernetes.client.BatchV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)

    def create(self, manifest: dict[str, Any]) -> None:
        manifest = {**manifest, "metadata": {k: v for k, v in manifest["metadata"].items() if k != "uid"}}
        self.batch.create_namespaced_job("default", manifest)  # type: ignore[arg-type]  # dicts are accepted

    def job(self, name: str) -> dict[str, Any]:
        return self.client.sanitize_for_serialization(self.batch.read_namespaced_job(name, "default"))

    def pods(self, job_name: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod("default", label_selector=f"job-name={job_name}").items
        return [self.client.sanitize_for_serialization(p) for p in pods]

    def finished(self, name: str, timeout: float = 15) -> dict[str, Any]:
        """The Job once it has a Complete or Failed condition."""
        return wait_for(lambda: self._terminal(name), timeout)

    def _terminal(self, name: str) -> dict[str, Any] | None:
        j = self.job(name)
        types = {c["type"] for c in j.get("status", {}).get("conditions") or [] if c["status"] == "True"}
        return j if types & {"Complete", "Failed"} else None


def wait_for(probe: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while (result := probe()) is None or result is False:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def condition(j: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in j["status"]["conditions"] if c["type"] == kind)


def terminated(pod: dict[str, Any], container: str = "main", init: bool = False) -> dict[str, Any]:
    statuses = pod["status"]["initContainerStatuses" if init else "containerStatuses"]
    return next(s for s in statuses if s["name"] == container)["state"]["terminated"]


@pytest.fixture
def cluster(api_client: kubernetes.client.ApiClient) -> Cluster:
    return Cluster(api_client)


@pytest.fixture
def runner(api_server: ApiServer, tmp_path: Path) -> Iterator[JobRunner]:
    with JobRunner(api_server.url, tmp_path / "jobs", retry_delay=0.05, max_grace=0.5) as r:
        yield r


def test_successful_job(cluster: Cluster, runner: JobRunner) -> None:
    cluster.create(job("ok", py("print('hello from', __import__('os').environ['HOSTNAME'])")))
    j = cluster.finished("ok")
    assert condition(j, "Complete")["status"] == "True"
    assert j["status"]["succeeded"] == 1 and "failed" not in j["status"] and "active" not in j["status"]
    assert j["status"]["startTime"] <= j["status"]["completionTime"]
    (pod,) = cluster.pods("ok")
    name = pod["metadata"]["name"]
    assert name.startswith("ok-") and len(name) == len("ok-") + 5
    assert pod["metadata"]["ownerReferences"][0]["uid"] == j["metadata"]["uid"]
    assert pod["metadata"]["labels"]["controller-uid"] == j["metadata"]["uid"]
    assert pod["status"]["phase"] == "Succeeded"
    assert terminated(pod)["exitCode"] == 0 and terminated(pod)["reason"] == "Completed"
    assert runner.logs("default", name, "main") == f"hello from {name}\n"


def test_failing_job_with_no_retries(cluster: Cluster, runner: JobRunner) -> None:
    cluster.create(job("bad", py("import sys; print('oops', file=sys.stderr); sys.exit(3)"), backoffLimit=0))
    j = cluster.finished("bad")
    failed = condition(j, "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "BackoffLimitExceeded")
    assert j["status"]["failed"] == 1 and "completionTime" not in j["status"]
    (pod,) = cluster.pods("bad")
    assert pod["status"]["phase"] == "Failed"
    assert (terminated(pod)["exitCode"], terminated(pod)["reason"]) == (3, "Error")
    assert runner.logs("default", pod["metadata"]["name"], "main") == "oops\n"


def test_failed_pod_is_retried_up_to_the_backoff_limit(cluster: Cluster, runner: JobRunner) -> None:
    cluster.create(job("flaky", py("raise SystemExit(1)"), backoffLimit=1))
    j = cluster.finished("flaky")
    assert condition(j, "Failed")["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 2
    pods = cluster.pods("flaky")
    assert len(pods) == 2 and len({p["metadata"]["name"] for p in pods}) == 2
    assert all(p["status"]["phase"] == "Failed" for p in pods)


def test_retry_can_succeed(cluster: Cluster, runner: JobRunner, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    code = f"import os, sys; p = {str(marker)!r}; first = not os.path.exists(p); open(p, 'a').close(); sys.exit(first)"
    cluster.create(job("second-time", py(code, **AS_ROOT), backoffLimit=2))
    j = cluster.finished("second-time")
    assert condition(j, "Complete")["status"] == "True"
    assert (j["status"]["succeeded"], j["status"]["failed"]) == (1, 1)


def test_active_deadline_kills_the_pod(cluster: Cluster, runner: JobRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    cluster.create(job("slow", py(code, **AS_ROOT), activeDeadlineSeconds=1))
    j = cluster.finished("slow")
    assert time.monotonic() - started < 3.5  # the deadline (1 s) plus at most the grace period and polling
    failed = condition(j, "Failed")
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    (pod,) = cluster.pods("slow")
    assert (pod["status"]["phase"], pod["status"]["reason"]) == ("Failed", "DeadlineExceeded")
    assert terminated(pod)["reason"] == "DeadlineExceeded"
    assert terminated(pod)["exitCode"] in (137, 143)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_termination_messages(cluster: Cluster, runner: JobRunner) -> None:
    cluster.create(
        job(
            "msg",
            py("open('/dev/termination-log', 'w').write('accuracy=0.93')", name="writer"),
            py("print('\\n'.join(map(str, range(100)))); raise SystemExit(2)",
               name="crasher", terminationMessagePolicy="FallbackToLogsOnError"),
            py("import os; open(os.environ['PODIUM_TERMINATION_LOG'], 'w').write('x' * 5000)",
               name="custom", terminationMessagePath="/var/run/msg"),
            backoffLimit=0,
        )
    )  # fmt: skip
    cluster.finished("msg")
    (pod,) = cluster.pods("msg")
    assert pod["status"]["phase"] == "Failed"
    assert terminated(pod, "writer")["message"] == "accuracy=0.93"
    crash = terminated(pod, "crasher")
    assert crash["exitCode"] == 2 and crash["message"].splitlines() == [str(i) for i in range(20, 100)]
    assert terminated(pod, "custom")["message"] == "x" * 4096


def test_init_container_shares_an_empty_dir_with_the_main_container_only_within_a_pod(
    cluster: Cluster, runner: JobRunner
) -> None:
    writer = py("import os; open('/data/who', 'w').write(os.environ['HOSTNAME'])", name="stage",
                volumeMounts=[{"name": "scratch", "mountPath": "/data"}])  # fmt: skip
    reader = py(
        "import os, time; time.sleep(0.3); who = open('/data/who').read(); print(who);"
        "raise SystemExit(who != os.environ['HOSTNAME'])",
        volumeMounts=[{"name": "scratch", "mountPath": "/data"}],
    )
    for name in ("share-a", "share-b"):  # concurrently: each pod must see its own file
        cluster.create(
            job(name, reader, init=[writer], volumes=[{"name": "scratch", "emptyDir": {}}], backoffLimit=0)
        )
    for name in ("share-a", "share-b"):
        assert condition(cluster.finished(name), "Complete")["status"] == "True"
        (pod,) = cluster.pods(name)
        assert terminated(pod, "stage", init=True)["exitCode"] == 0
        assert runner.logs("default", pod["metadata"]["name"], "main") == pod["metadata"]["name"] + "\n"


def test_env_from_secret_config_map_and_field_ref(cluster: Cluster, runner: JobRunner) -> None:
    secret = {"metadata": {"name": "creds"}, "data": {"token": base64.b64encode(b"s3cr3t").decode()}}
    cluster.core.create_namespaced_secret("default", secret)  # type: ignore[arg-type]  # dicts are accepted
    config_map = {"metadata": {"name": "settings"}, "data": {"mode": "fast"}}
    cluster.core.create_namespaced_config_map("default", config_map)  # type: ignore[arg-type]
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    cluster.create(
        job("env", py("import os; print(os.environ['TOKEN'], os.environ['MODE'], os.environ['NS'])", env=env))
    )
    assert condition(cluster.finished("env"), "Complete")["status"] == "True"
    (pod,) = cluster.pods("env")
    assert runner.logs("default", pod["metadata"]["name"], "main") == "s3cr3t fast default\n"


def test_container_without_command_fails_with_a_clear_message(cluster: Cluster, runner: JobRunner) -> None:
    cluster.create(job("entrypoint", {"name": "main", "image": "busybox"}, backoffLimit=0))
    assert condition(cluster.finished("entrypoint"), "Failed")["reason"] == "BackoffLimitExceeded"
    (pod,) = cluster.pods("entrypoint")
    state = terminated(pod)
    assert (state["exitCode"], state["reason"]) == (128, "StartError")
    assert "has no command" in state["message"] and "busybox" in pod["status"]["message"]


@pytest.mark.parametrize("cgroups", [True, False], ids=["memory-cgroup", "rlimit"])
def test_memory_limit(api_server: ApiServer, cluster: Cluster, tmp_path: Path, cgroups: bool) -> None:
    hog = py("b = b'x' * (1 << 30)", resources={"limits": {"memory": "256Mi", "cpu": "1"}})  # touches 1 GiB
    with JobRunner(api_server.url, tmp_path / "jobs", memory_cgroups=cgroups) as runner:
        if cgroups and not runner.memory_limits.startswith("cgroup"):
            pytest.skip(f"no memory cgroups here: {runner.memory_limits}")
        cluster.create(job("hog", hog, backoffLimit=0))
        cluster.finished("hog")
    (pod,) = cluster.pods("hog")
    assert terminated(pod)["reason"] == "OOMKilled"
    if cgroups:  # killed by the kernel, as in a cluster
        assert terminated(pod)["exitCode"] == 137


def test_memory_cgroup_limits_resident_memory_not_address_space(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    reserve = py("import mmap; m = mmap.mmap(-1, 2 << 30); m[:4096] = b'x' * 4096; print('reserved')",
                 resources={"limits": {"memory": "256Mi"}})  # 2 GiB mapped, one page used
    with JobRunner(api_server.url, tmp_path / "jobs") as runner:
        if not runner.memory_limits.startswith("cgroup"):
            pytest.skip(f"no memory cgroups here: {runner.memory_limits}")
        cluster.create(job("reserve", reserve, backoffLimit=0))
        assert condition(cluster.finished("reserve"), "Complete")["status"] == "True"
        (pod,) = cluster.pods("reserve")
        assert runner.logs("default", pod["metadata"]["name"], "main") == "reserved\n"
    tree = runner._settings.memory
    assert tree is not None and not (tree.path / f"default.{pod['metadata']['name']}.main").exists()  # removed


def test_sandbox_hook_rewrites_the_process(api_server: ApiServer, cluster: Cluster, tmp_path: Path) -> None:
    def sandbox(plan: ContainerPlan) -> ContainerPlan:
        return dataclasses.replace(plan, env={**plan.env, "SANDBOXED": plan.name})

    with JobRunner(api_server.url, tmp_path / "jobs", sandbox=sandbox) as runner:
        cluster.create(job("boxed", py("import os; print(os.environ['SANDBOXED'])")))
        cluster.finished("boxed")
        (pod,) = cluster.pods("boxed")
        assert runner.logs("default", pod["metadata"]["name"], "main") == "main\n"


def test_suspended_job_waits_until_resumed(cluster: Cluster, runner: JobRunner) -> None:
    cluster.create(job("later", py("pass"), suspend=True))
    time.sleep(0.5)
    assert cluster.pods("later") == [] and not cluster.job("later").get("status", {}).get("startTime")
    cluster.batch.patch_namespaced_job("later", "default", {"spec": {"suspend": False}})
    assert condition(cluster.finished("later"), "Complete")["status"] == "True"


def test_deleting_a_job_kills_its_processes(cluster: Cluster, runner: JobRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    cluster.create(
        job(
            "doomed",
            py(f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)", **AS_ROOT),
        )
    )
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    cluster.batch.delete_namespaced_job("doomed", "default")

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=5)


def test_a_new_runner_does_not_rerun_finished_jobs(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    cluster.create(job("once", py(f"open({str(runs)!r}, 'a').write('run\\n')", **AS_ROOT)))
    with JobRunner(api_server.url, tmp_path / "jobs"):
        before = cluster.finished("once")
    with JobRunner(api_server.url, tmp_path / "jobs"):
        time.sleep(0.5)
    assert runs.read_text() == "run\n"
    assert len(cluster.pods("once")) == 1
    assert cluster.job("once")["status"] == before["status"]


def test_a_new_runner_fails_pods_left_running_and_retries(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    code = f"import time; n = open({str(runs)!r}, 'a').write('run\\n'); time.sleep(0 if open({str(runs)!r}).read().count('run') > 1 else 60)"
    cluster.create(job("interrupted", py(code, **AS_ROOT), backoffLimit=1))
    with JobRunner(api_server.url, tmp_path / "jobs"):
        wait_for(lambda: runs.exists())
    with JobRunner(api_server.url, tmp_path / "jobs"):
        j = cluster.finished("interrupted")
    assert condition(j, "Complete")["status"] == "True" and j["status"]["failed"] == 1
    outcomes = sorted((p["status"]["phase"], p["status"].get("reason")) for p in cluster.pods("interrupted"))
    assert outcomes == [("Failed", "RunnerRestarted"), ("Succeeded", None)]


def test_max_parallel_queues_pods(api_server: ApiServer, cluster: Cluster, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    code = f"import time; f = open({str(trace)!r}, 'a'); f.write('start\\n'); f.flush(); time.sleep(0.2); f.write('end\\n')"
    with JobRunner(api_server.url, tmp_path / "jobs", max_parallel=1):
        for name in ("q1", "q2"):
            cluster.create(job(name, py(code, **AS_ROOT)))
        for name in ("q1", "q2"):
            cluster.finished(name)
    assert trace.read_text().split() == ["start", "end", "start", "end"]


def test_namespaced_runner_ignores_other_namespaces(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    with JobRunner(api_server.url, tmp_path / "jobs", namespace="elsewhere"):
        cluster.create(job("not-mine", py("pass")))
        time.sleep(0.5)
    assert cluster.pods("not-mine") == []


def test_start_fails_when_the_api_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(OSError):  # aiohttp's connection errors are OSErrors
        JobRunner("http://127.0.0.1:9", tmp_path).start()


def test_suspending_a_running_job_kills_and_deletes_its_pod(
    cluster: Cluster, runner: JobRunner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    code = (
        f"import os, time; p = {str(pid_file)!r}; first = not os.path.exists(p);"
        "open(p, 'w').write(str(os.getpid())); time.sleep(60 if first else 0)"
    )
    cluster.create(job("pausable", py(code, **AS_ROOT)))
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    cluster.batch.patch_namespaced_job("pausable", "default", {"spec": {"suspend": True}})
    wait_for(lambda: cluster.pods("pausable") == [] and cluster.job("pausable")["status"].get("conditions"))
    assert condition(cluster.job("pausable"), "Suspended")["status"] == "True"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    cluster.batch.patch_namespaced_job("pausable", "default", {"spec": {"suspend": False}})
    j = cluster.finished("pausable")
    assert condition(j, "Complete")["status"] == "True" and "failed" not in j["status"]
    assert condition(j, "Suspended")["reason"] == "JobResumed"


# --- The warm interpreter for Podium's own steps --------------------------------------------------

PROBE = "tests.local.warm_probe"


REPO = Path(__file__).resolve().parents[2]


def probe_job(name: str, *args: str, env: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    env = [*(env or []), {"name": "PYTHONPATH", "value": str(REPO)}]  # for a new process; warm ones have it
    container = {"name": "main", "image": "podium", "command": ["python", "-m", PROBE, *args], "env": env,
                 **AS_ROOT, **extra}  # (the test's own module and directories: outside any sandbox)
    return job(name, container, backoffLimit=0)


def test_warm_interpreter_starts_containers_as_a_new_process_would(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    with JobRunner(api_server.url, tmp_path / "jobs", base_env={"PATH": os.environ["PATH"]},
                   warm_modules=(PROBE,)) as runner:
        cluster.create(probe_job("warm", "7", env=[{"name": "ANSWER", "value": "42"}], workingDir=str(workdir)))
        cluster.finished("warm")
        (pod,) = cluster.pods("warm")
        seen = json.loads(runner.logs("default", pod["metadata"]["name"], "main"))
        assert runner.warm_starts == 1
    assert terminated(pod)["exitCode"] == 7 and terminated(pod)["reason"] == "Error"
    assert seen["argv"] == ["7"] and seen["cwd"] == str(workdir) and seen["session_leader"] is True
    assert seen["env"]["ANSWER"] == "42" and seen["env"]["HOSTNAME"] == pod["metadata"]["name"]
    assert not {k for k in seen["env"] if k.startswith(("AWS_", "KUBE", "PODIUM_S3"))}  # only the container's


def test_warm_interpreter_gone_falls_back_to_a_new_process(
    api_server: ApiServer, cluster: Cluster, tmp_path: Path
) -> None:
    with JobRunner(api_server.url, tmp_path / "jobs", warm_modules=(PROBE,)) as runner:
        cluster.create(probe_job("first", "0"))
        assert condition(cluster.finished("first"), "Complete")["status"] == "True"
        assert runner._zygote is not None and runner._zygote._process is not None
        os.kill(runner._zygote._process.pid, signal.SIGKILL)
        cluster.create(probe_job("second", "0"))
        assert condition(cluster.finished("second"), "Complete")["status"] == "True"
        assert runner.warm_starts == 1  # the second one was started the ordinary way


def test_warm_interpreter_applies_the_memory_cgroup(api_server: ApiServer, cluster: Cluster, tmp_path: Path) -> None:
    with JobRunner(api_server.url, tmp_path / "jobs", warm_modules=(PROBE,)) as runner:
        if not runner.memory_limits.startswith("cgroup"):
            pytest.skip(f"without memory cgroups limited containers start the ordinary way: {runner.memory_limits}")
        cluster.create(probe_job("hog", "0", "hog", resources={"limits": {"memory": "256Mi"}}))
        cluster.finished("hog")
        assert runner.warm_starts == 1
    (pod,) = cluster.pods("hog")
    assert terminated(pod)["reason"] == "OOMKilled" and terminated(pod)["exitCode"] == 137
