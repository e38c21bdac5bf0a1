"""Local mode's Job controller and kubelet: run each ``batch/v1`` Job's pod as local processes.

The runner watches Jobs through the API server and, for each one that is neither finished
nor suspended, creates Pods (one at a time, until ``completions`` succeed or the Job fails),
runs their containers as processes (see :mod:`podium_operator.local.podspec.plan` for how a container spec
becomes a process, including the path-mapping rule for volumes) and writes Pod and Job
status as the kubelet and the Job controller would (:mod:`.status`).

Behaviour worth knowing:

- Volumes are directories under ``<workdir>/<ns>/<pod>/`` (a claim's is shared by the
  namespace's pods: ``<workdir>/<ns>/pvc/<claim>/<uid>/``, removed once the claim is deleted
  and no pod uses it); a ``mountPath`` (and the
  termination-message path) is rewritten to its directory wherever it appears in
  ``command``, ``args``, ``env`` values and ``workingDir``. The termination file's real
  path is also in ``PODIUM_TERMINATION_LOG``. Details in :mod:`podium_operator.local.podspec.plan`.
- Each container runs in the sandbox its pod spec asks for (user, private view of the
  files, no network under a denying NetworkPolicy, read-only root), as far as this machine
  allows: see :mod:`podium_operator.local.sandbox` and :meth:`JobRunner.sandbox_support`. Pods get the
  container's own environment on top of ``base_env`` (by default a few variables of the
  runner's, such as ``PATH``); ``AWS_*``, ``PODIUM_*`` and ``KUBE*`` variables never pass.
- Containers running ``python -m`` one of Podium's own trusted steps (stage, score) are forked
  from a warm interpreter that has imported them already (:mod:`podium_operator.local.zygote`), set up exactly as an
  ordinary one; anything else (the submitter's predict step included) starts a new process.
- ``limits.memory`` becomes a memory cgroup per container where the runner can make one
  (resident memory; exceeding it is an OOM kill, exit 137, ``OOMKilled``), else ``RLIMIT_AS``
  (address space, so generous for runtimes that reserve much virtual memory; a failure with a
  ``MemoryError``-like log is ``OOMKilled``). :attr:`JobRunner.memory_limits` says which.
  ``limits.cpu`` is not enforced.
- Every container gets at most ``pids_limit`` processes and threads (a kubelet's
  ``podPidsLimit``; forks past it fail with ``EAGAIN``): a pids cgroup, else ``RLIMIT_NPROC``
  (per user, not for root). :attr:`JobRunner.pids_limits` says which (:mod:`.limits`).
- A claim's ``resources.requests.storage`` and an emptyDir's ``sizeLimit`` are file systems of
  that size (writes past them fail with ``ENOSPC``; files past one per 16 KiB too), where the
  runner can mount them: :attr:`JobRunner.disk_limits` says how (:mod:`.volumes`).
  :meth:`JobRunner.sandbox_support` has ``pids`` and ``disk`` entries too.
- Nothing that grows with a pod runs on the event loop (see :mod:`.pod`).
- Logs (stdout and stderr together) stay in ``<workdir>/<ns>/<pod>/<container>.log`` after
  the pod ends; read them with :meth:`JobRunner.logs`.
- ``backoffLimit`` (default 6) counts failed pods; a replacement pod waits
  ``retry_delay * 2**(failures - 1)`` seconds (capped at a minute; Kubernetes starts at 10 s).
- ``activeDeadlineSeconds`` counts from the Job's ``startTime``: the running pod gets SIGTERM,
  then SIGKILL after ``min(terminationGracePeriodSeconds, max_grace)``.
- ``max_parallel`` caps running pods across all Jobs; queued Jobs wait without a Pod.
- Restart-safe: finished Jobs are left alone; a Job's pods that were active when a previous
  runner stopped are marked Failed (reason ``RunnerRestarted``) and count as failures.
- Deleting a Job kills its processes (its Pods go with the owner-reference cascade) and removes
  its pods' directories, logs included; so does the runner for pods deleted while it was down.
  ``spec.suspend: true`` kills them too and deletes the active Pod, as Kubernetes does. When the
  runner stops it unmounts the volumes' file systems (ext4 images stay, tmpfs content goes).
- ``sandbox`` may rewrite each container's :class:`ContainerPlan` just before it starts
  (before the sandbox above wraps it).

Gaps: Indexed Jobs, ``parallelism`` > 1, ``podFailurePolicy``, ``successPolicy``,
``ttlSecondsAfterFinished``, sidecars (``restartPolicy: Always`` init containers), probes,
``OnFailure`` (treated as ``Never``), deleting a Pod (not its Job) does not kill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from podium_operator.local.background import BackgroundService
from podium_operator.local.jobrunner.job import JobController, Settings, pod_dir
from podium_operator.local.jobrunner.kube import ApiError, KubeApi, claims_path, jobs_path
from podium_operator.local.jobrunner.limits import DEFAULT_PIDS_LIMIT, Limits
from podium_operator.local.jobrunner.pod import Sandbox
from podium_operator.local.jobrunner.status import job_is_finished
from podium_operator.local.jobrunner.volumes import VolumeFilesystems
from podium_operator.local.podspec.plan import ContainerPlan, PodPlan, plan_pod
from podium_operator.local.sandbox.confiner import Confiner
from podium_operator.local.zygote.client import Zygote
from podium_operator.local.zygote.server import TRUSTED_MODULES

__all__ = ["ContainerPlan", "JobRunner", "PodPlan", "plan_pod"]

log = logging.getLogger(__name__)

# What pods inherit from the host; the rest (credentials above all) stays out.
PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "VIRTUAL_ENV")
# Never passed to pods, even in an explicit ``base_env``: pods get credentials from Secrets.
CREDENTIAL_PREFIXES = ("AWS_", "PODIUM_", "KUBE")
_API_ERRORS = (aiohttp.ClientError, ApiError, TimeoutError)


class JobRunner(BackgroundService):
    """Runs Jobs found through the API at ``api_url`` until stopped (in its own thread)."""

    thread_name = "podium-jobrunner"
    display_name = "The job runner"

    def __init__(
        self,
        api_url: str,
        workdir: Path,
        *,
        namespace: str | None = None,
        max_parallel: int = 2,
        sandbox: Sandbox | None = None,
        base_env: Mapping[str, str] | None = None,
        max_grace: float = 2.0,
        retry_delay: float = 0.5,
        memory_cgroups: bool = True,
        warm_modules: Sequence[str] = TRUSTED_MODULES,
        pids_limit: int | None = DEFAULT_PIDS_LIMIT,
        pids_cgroups: bool = True,
        volume_filesystems: str = "auto",
    ) -> None:
        """``pids_limit``: processes and threads per container (None: unlimited); ``pids_cgroups`` and
        ``memory_cgroups`` False: rlimits instead; ``volume_filesystems``: ``auto``, ``ext4``, ``tmpfs``
        or ``off`` (see :mod:`.volumes`)."""
        super().__init__()
        self.api_url = api_url
        self.workdir = Path(workdir)
        self.namespace = namespace
        self._max_parallel = max_parallel
        limits = Limits.find(memory_cgroups=memory_cgroups, pids_cgroups=pids_cgroups, pids_limit=pids_limit)
        volumes = VolumeFilesystems(self.workdir, volume_filesystems)
        #: How memory limits are enforced: in a memory cgroup (like a cluster) or, failing that, RLIMIT_AS.
        self.memory_limits = limits.memory_mechanism
        #: How the pids limit is enforced: a pids cgroup per container, RLIMIT_NPROC per user, or not.
        self.pids_limits = limits.pids_mechanism
        #: How sized volumes are enforced: a file system of their size (ext4 image, tmpfs), or not.
        self.disk_limits = volumes.mechanism
        if limits.pids_unsupported is not None or volumes.unsupported is not None:
            log.warning("Local limits: pids: %s; disk: %s", self.pids_limits, self.disk_limits)
        self._settings = Settings(
            limits=limits,
            volumes=volumes,
            workdir=self.workdir,
            confiner=Confiner(self.workdir),
            sandbox=sandbox,
            base_env=_without_credentials(base_env if base_env is not None else _passthrough(os.environ)),
            max_grace=max_grace,
            retry_delay=retry_delay,
        )
        self._warm_modules = tuple(warm_modules)  # run from a warm interpreter; () turns that off
        self._zygote: Zygote | None = None
        # Loop-side state, keyed by Job uid.
        self._tasks: dict[str, asyncio.Task[bool]] = {}
        self._latest: dict[str, dict[str, Any]] = {}
        self._finished: set[str] = set()
        self._chores: set[asyncio.Task[None]] = set()  # clean-ups: pods' and claims' directories

    @property
    def _volumes(self) -> VolumeFilesystems:
        assert self._settings.volumes is not None
        return self._settings.volumes

    # --- Thread side ------------------------------------------------------------------------

    def sandbox_support(self) -> dict[str, str | None]:
        """What this runner enforces: ``{restriction: None or why not}`` (see :mod:`podium_operator.local.sandbox`),
        with ``pids`` (a limit per container) and ``disk`` (sized volumes) too."""
        return {
            **self._settings.confiner.support,
            "pids": self._settings.limits.pids_unsupported,
            "disk": self._volumes.unsupported,
        }

    @property
    def warm_starts(self) -> int:
        """Containers started from the warm interpreter (:mod:`podium_operator.local.zygote`) rather than a new process."""
        return self._zygote.forked if self._zygote is not None else 0

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        return self.pod_dir(namespace, pod) / f"{container}.log"

    def pod_dir(self, namespace: str, pod: str) -> Path:
        return pod_dir(self.workdir, namespace, pod)

    def logs(self, namespace: str, pod: str, container: str) -> str:
        """A container's stdout and stderr so far (FileNotFoundError if it never started)."""
        return self.log_path(namespace, pod, container).read_text(errors="replace")

    # --- Loop side: watching ---------------------------------------------------------------

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            self._api = KubeApi(self.api_url, session)
            if self._warm_modules:  # started by the first container it can run
                self._zygote = Zygote(self._settings.base_env, self.workdir / "warm-python.log", self._warm_modules)
            self._controller = JobController(
                self._api, asyncio.Semaphore(self._max_parallel), self._settings, self._zygote
            )
            items, version = await self._api.list(jobs_path(self.namespace))
            self._relisted(items)
            claims_at = time.time()
            claims, claims_version = await self._api.list(claims_path(self.namespace))
            ready.set()
            self._chore(self._sweep_on_start(claims, claims_at))
            watchers = [
                asyncio.create_task(self._watch(jobs_path(self.namespace), version, self._on_event, self._relisted)),
                asyncio.create_task(self._watch(claims_path(self.namespace), claims_version, self._on_claim,
                                                self._claims_relisted)),
            ]  # fmt: skip
            await self._stopping.wait()
            tasks = [*watchers, *self._tasks.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._zygote is not None:
                await self._zygote.stop()
            for chore in list(self._chores):
                chore.cancel()  # (a removal under way finishes in its thread; unmount_all waits for it)
            await asyncio.gather(*self._chores, return_exceptions=True)
            await asyncio.to_thread(self._volumes.unmount_all)

    async def _watch(
        self, path: str, version: str, on_event: Callable[[str, dict[str, Any]], None],
        on_list: Callable[[list[dict[str, Any]], float], None],
    ) -> None:  # fmt: skip
        while True:
            try:
                async for event in self._api.watch(path, resource_version=version):
                    obj = event.get("object", {})
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        on_event(event["type"], obj)
            except _API_ERRORS as e:
                log.debug("Watch of %s interrupted: %s", path, e)
                await asyncio.sleep(0.5)
            # The stream ended or failed: relist, so that nothing is missed in between.
            with contextlib.suppress(*_API_ERRORS):
                listed_at = time.time()
                items, version = await self._api.list(path)
                on_list(items, listed_at)

    # --- Loop side: clean-ups -----------------------------------------------------------------

    def _chore(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _sweep_on_start(self, claims: list[dict[str, Any]], listed_at: float) -> None:
        """Free what objects deleted while no runner watched left behind."""
        self._claims_relisted(claims, listed_at)
        namespaces = await asyncio.to_thread(self._controller.namespaces_on_disk)
        for ns in namespaces if self.namespace is None else [n for n in namespaces if n == self.namespace]:
            with contextlib.suppress(*_API_ERRORS):
                await self._controller.sweep_pods(ns)

    async def _forget(self, ns: str, task: asyncio.Task[bool] | None) -> None:
        """A Job was deleted: once its processes are gone, so go its pods' directories."""
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self._controller.sweep_pods(ns)
        except _API_ERRORS as e:  # the next deletion, or the next start, sweeps them
            log.warning("Pods of namespace %s not swept: %s", ns, e)

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        meta = claim.get("metadata", {})
        if kind == "DELETED" and meta.get("uid"):
            ns = meta.get("namespace", "default")
            self._chore(self._controller.remove_claim(ns, meta["name"], meta["uid"]))

    def _claims_relisted(self, claims: list[dict[str, Any]], listed_at: float) -> None:
        live = {(c["metadata"].get("namespace", "default"), c["metadata"]["name"], c["metadata"].get("uid", ""))
                for c in claims}  # fmt: skip
        namespaces = {self.namespace} if self.namespace else None
        self._chore(self._sweep_claims(namespaces, live, listed_at))

    async def _sweep_claims(self, namespaces: set[str] | None, live: set[tuple[str, str, str]], at: float) -> None:
        found = await asyncio.to_thread(self._controller.namespaces_on_disk) if namespaces is None else namespaces
        await self._controller.sweep_claims(found, live, at)

    def _relisted(self, jobs: Sequence[dict[str, Any]], listed_at: float = 0.0) -> None:
        present = {job["metadata"].get("uid") for job in jobs}
        for uid in [uid for uid in self._latest if uid not in present]:
            self._on_event("DELETED", self._latest[uid])
        for job in jobs:
            self._on_event("ADDED", job)

    def _on_event(self, kind: str, job: dict[str, Any]) -> None:
        """Level-triggered: compare the Job's latest state with what runs for it."""
        uid = job.get("metadata", {}).get("uid")
        if not uid:
            log.warning("Ignoring a Job without uid: %s", job.get("metadata", {}).get("name"))
            return
        task = self._tasks.get(uid)
        if kind == "DELETED":
            self._latest.pop(uid, None)
            if task is not None:
                task.cancel()  # kills its processes
            self._chore(self._forget(job["metadata"].get("namespace", "default"), task))
            return
        self._latest[uid] = job
        if uid in self._finished or task is not None and task.get_name() == "suspend":
            return
        if job_is_finished(job):
            self._finished.add(uid)
        elif job.get("spec", {}).get("suspend"):
            if task is not None:
                self._track(uid, self._controller.suspend(job, task), "suspend")
        elif task is None:
            self._track(uid, self._controller.drive(job), "drive")

    def _track(self, uid: str, coro: Coroutine[Any, Any, bool], name: str) -> None:
        """Run a controller coroutine for a Job; it returns True when the Job needs nothing more."""
        task = asyncio.create_task(coro, name=name)
        self._tasks[uid] = task

        def done(_: asyncio.Task[bool]) -> None:
            if self._tasks.get(uid) is not task:
                return
            del self._tasks[uid]
            if task.cancelled():  # deleted, suspended or stopping: nothing to catch up with
                return
            failure = task.exception()
            if failure is None and task.result():
                self._finished.add(uid)
                return
            if failure is not None:
                log.error("Job %s: %r", uid, failure, exc_info=failure)
            # Catch up with what happened meanwhile, e.g. a resume during a suspension, after a
            # pause: the watch may lag behind what the task saw, and the API may be down.
            asyncio.get_running_loop().call_later(1.0 if failure else 0.2, self._catch_up, uid)

        task.add_done_callback(done)

    def _catch_up(self, uid: str) -> None:
        stopping = self._stopping is not None and self._stopping.is_set()
        if uid in self._latest and uid not in self._tasks and not stopping:
            self._on_event("MODIFIED", self._latest[uid])


def _passthrough(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: environ[k] for k in PASSTHROUGH_ENV if k in environ}


def _without_credentials(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.upper().startswith(CREDENTIAL_PREFIXES)}
