"""The local cluster: API emulator, object store, job runner and the operator, on 127.0.0.1.

``LocalCluster`` composes the pieces in-process (tests use it directly); :mod:`.daemon` runs one in
the background for ``podium local up``.

It has identities: the admin (``podium-admin``: the operator, the job runner and ``kubeconfig``'s current
context) and the users added with :meth:`LocalCluster.add_user`, each with a bearer token bound to one of
the chart's ClusterRoles and object-store credentials limited to their own upload prefixes.

Clients find the object store from the cluster, as on one with the chart installed: ConfigMap
``podium-client`` in ``podium-system`` says where it is (``endpoint``, ``bucket``, ``region``; every
authenticated user may read it), and each kubeconfig user carries its own credentials in the extension
``podium.dev/object-store`` (``accessKeyId``, ``secretAccessKey``), which kubectl keeps and ignores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import kmock

from podium.api.crdgen import write_crds
from podium.discovery import CONFIG_MAP, CONFIG_NAMESPACE, EXTENSION
from podium_operator.local.apiserver.auth import ADMIN
from podium_operator.local.apiserver.rbac import ROLES as CHART_ROLES
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.apiserver.store import NAMESPACES
from podium_operator.local.jobrunner.runner import JobRunner
from podium_operator.local.objectstore import Grant, ObjectStore
from podium_operator.local.sandbox.confiner import describe as describe_sandbox
from podium_operator.local.serving.controller import ServingController
from podium_operator.local.serving.prometheus import Prometheus, find_binary
from podium_operator.local.serving.storage import S3Access
from podium_operator.local.serving.vendor_crds import kserve_crds

ROLES = tuple(CHART_ROLES)  # participant, owner: the chart's podium-participant and podium-playground-owner
CONFIG_MAPS = kmock.resource("", "v1", "configmaps")
log = logging.getLogger(__name__)
Progress = Callable[[str, float | None], None]  # (component, None when it starts stopping, else seconds it took)


class LocalCluster:
    """Everything local mode needs; ``with LocalCluster(state_dir) as cluster: ...``."""

    def __init__(
        self, state_dir: Path, *, operator: bool = True, api_port: int = 0, job_parallelism: int = 4,
        metrics_port: int | None = None, prometheus: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.with_prometheus = prometheus  # False: the operator's canary analysis scrapes the predictors directly
        self.kubeconfig = state_dir / "kubeconfig"
        self.with_operator = operator
        self.api_port = api_port
        self.job_parallelism = job_parallelism
        self.metrics_port = metrics_port
        self.api: ApiServer | None = None
        self.store: ObjectStore | None = None
        self.runner: JobRunner | None = None
        self.serving: ServingController | None = None
        self.prometheus: Prometheus | None = None
        self.operator_process: subprocess.Popen[bytes] | None = None
        self.users: dict[str, dict[str, Any]] = {}  # name -> {"role": ..., "env": ...}
        self._credentials: dict[str, dict[str, str]] = {}  # user -> their object-store credentials

    def start(self) -> LocalCluster:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        crds = write_crds(self.state_dir / "crds")
        api = self.api = ApiServer(crd_paths=crds, port=self.api_port).start()
        api.call(lambda: [api.emulator.apply_crd(crd) for crd in kserve_crds()])  # KServe's, as on a cluster with it
        self.store = ObjectStore()
        self.store.start()
        self._credentials[ADMIN] = {"accessKeyId": self.store.access_key, "secretAccessKey": self.store.secret_key}
        self._write_kubeconfig(self.kubeconfig)
        self.api.call(self._publish_client_config)
        self.runner = JobRunner(
            self.api.url, self.state_dir / "jobs", base_env=self._job_env(), max_parallel=self.job_parallelism
        )
        self.api.emulator.pod_logs = self.runner.log_path  # (set before any pod runs; read in the server's loop)
        self.runner.start()
        self._start_serving()
        if self.with_operator:
            self.start_operator()
        return self

    def _start_serving(self) -> None:
        """The serving controller (KServe's part), and a Prometheus scraping it where the binary is installed."""
        assert self.api is not None and self.store is not None
        binary = find_binary() if self.with_prometheus else None
        if binary is None and self.with_prometheus:
            log.warning("No prometheus binary (apt: prometheus): the operator will scrape the predictors directly")
        elif binary is not None:
            self.prometheus = Prometheus(self.state_dir / "prometheus", binary).start()
        s3 = S3Access(self.store.endpoint, self.store.access_key, self.store.secret_key, self.store.region)
        self.serving = ServingController(self.api.url, self.state_dir / "serving", s3,
                                         base_env=self._job_env(), prometheus=self.prometheus).start()

    def _publish_client_config(self) -> None:
        """ConfigMap ``podium-client`` in ``podium-system``: where clients find the object store (server's loop)."""
        assert self.api is not None and self.store is not None
        store = self.api.emulator.store
        store.create(NAMESPACES, None, {"metadata": {"name": CONFIG_NAMESPACE}})
        data = {"endpoint": self.store.endpoint, "bucket": self.store.bucket, "region": self.store.region}
        store.create(CONFIG_MAPS, CONFIG_NAMESPACE, {"metadata": {"name": CONFIG_MAP}, "data": data})

    def _write_kubeconfig(self, path: Path, user: str | None = None) -> Path:
        """A kubeconfig (the admin's, or ``user``'s) whose users carry their object-store credentials."""
        assert self.api is not None
        extensions = {name: {EXTENSION: credentials} for name, credentials in self._credentials.items()}
        return self.api.write_kubeconfig(path, user=user, extensions=extensions)

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
        an owner also ``playgrounds/<namespace>/``, for holdouts written by hand, as the examples are) and the endpoint.
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
        self._credentials[name] = {"accessKeyId": grant.access_key, "secretAccessKey": grant.secret_key}
        kubeconfig = self._write_kubeconfig(self.state_dir / "users" / name / "kubeconfig", user=name)
        self._write_kubeconfig(self.kubeconfig)  # the admin's, with a context for every user
        env = {**self.store.env(), "AWS_ACCESS_KEY_ID": grant.access_key, "AWS_SECRET_ACCESS_KEY": grant.secret_key,
               "KUBECONFIG": str(kubeconfig)}
        self.users[name] = {"role": role, "namespaces": list(namespaces), "env": env}
        return dict(env)

    def start_operator(self, extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.state_dir / "operator.log").open("ab")
        # This machine is a node without GPUs: training Jobs run on CPU, and report progress often.
        env = {**self.environment(), "PODIUM_GPU_POOL": "false", "PODIUM_TRAINING_PROGRESS_SECONDS": "2",
               **(extra_env or {})}
        if self.metrics_port is not None:
            env["PODIUM_METRICS_PORT"] = str(self.metrics_port)
        if self.prometheus is not None:
            env["PODIUM_PROMETHEUS_URL"] = self.prometheus.url
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

    def stop(self, progress: Progress | None = None) -> None:
        """Stop everything, the operator first; ``progress`` hears of each component as it stops."""
        parts: list[tuple[str, Callable[[], None] | None]] = [
            ("operator", self.stop_operator if self.operator_process is not None else None),
            ("serving controller", self.serving.stop if self.serving is not None else None),
            ("prometheus", self.prometheus.stop if self.prometheus is not None else None),
            ("job runner", self.runner.stop if self.runner is not None else None),
            ("object store", self.store.stop if self.store is not None else None),
            ("API server", self.api.stop if self.api is not None else None),
        ]
        for name, stop in parts:
            if stop is None:
                continue
            started = time.monotonic()
            if progress is not None:
                progress(name, None)
            with contextlib.suppress(Exception):
                stop()
            if progress is not None:
                progress(name, time.monotonic() - started)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def seed_examples(self) -> subprocess.Popen[str]:
        """Start storing the objects the manifests in ``examples/`` name (:mod:`.examples`, in a process of its
        own); its output is their URIs, one a line."""
        assert self.store is not None
        command = [sys.executable, "-m", "podium_operator.local.examples", "--endpoint", self.store.endpoint,
                   "--bucket", self.store.bucket, "--region", self.store.region,
                   "--cache", str(self.state_dir / "examples-cache")]
        return subprocess.Popen(command, env=self.environment(), stdout=subprocess.PIPE, text=True)

    def describe(self) -> dict[str, Any]:
        """The state ``podium local`` keeps: addresses, and each user's role and environment (secrets too)."""
        assert self.api is not None and self.store is not None and self.runner is not None
        return {
            "api": self.api.server_url,
            "kubeconfig": str(self.kubeconfig),
            "objectStore": self.store.endpoint,
            **({"prometheus": self.prometheus.url} if self.prometheus is not None else {}),
            "bucket": self.store.bucket,
            "sandbox": describe_sandbox(self.runner.sandbox_support()),
            "pid": str(os.getpid()),
            "env": {**self.store.env(), "KUBECONFIG": str(self.kubeconfig)},
            "users": self.users,
        }
