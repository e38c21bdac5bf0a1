"""The Job controller for one Job: create pods one attempt at a time until the Job is over.

Counts are derived from the Job's pods, as Kubernetes' controller does, so that a restarted
runner resumes where the previous one stopped (see :meth:`JobController.drive`). The sweeps
free what deleted Pods and PersistentVolumeClaims leave on disk, as a kubelet frees an
orphaned pod's directories and a provisioner a deleted claim's volume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from podium.api.meta import parse_time
from podium_operator.local.cgroups import CgroupTree
from podium_operator.local.jobrunner.kube import (
    ApiError,
    KubeApi,
    core_path,
    job_path,
    network_policies_path,
    pod_path,
    pods_path,
)
from podium_operator.local.jobrunner.limits import Limits
from podium_operator.local.jobrunner.pod import PodRun, Sandbox
from podium_operator.local.jobrunner.status import (
    Verdict,
    job_deadline,
    job_is_finished,
    job_status,
    job_verdict,
    pod_is_finished,
    set_condition,
)
from podium_operator.local.jobrunner.volumes import VolumeFilesystems
from podium_operator.local.podspec.manifests import (
    claim_storage,
    config_map_data,
    pod_manifest,
    pod_template_spec,
    referenced_claims,
    referenced_objects,
    secret_data,
)
from podium_operator.local.podspec.plan import PodPlan, PodRefs, plan_pod
from podium_operator.local.sandbox.confiner import Confiner
from podium_operator.local.zygote.client import Zygote

log = logging.getLogger(__name__)

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated names
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
MAX_RETRY_DELAY = 60.0
_API_ERRORS = (aiohttp.ClientError, ApiError, TimeoutError)

Report = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Settings:
    workdir: Path
    confiner: Confiner
    sandbox: Sandbox | None
    base_env: Mapping[str, str]
    max_grace: float
    retry_delay: float
    limits: Limits = Limits(pids_limit=None)  # containers' memory and pids limits
    volumes: VolumeFilesystems | None = None  # sized volumes' file systems, and the sweeps

    @property
    def memory(self) -> CgroupTree | None:
        """Where containers' memory cgroups go; None: RLIMIT_AS."""
        return self.limits.memory


def pod_dir(workdir: Path, namespace: str, pod: str) -> Path:
    return workdir / namespace / pod


def claim_dir(workdir: Path, namespace: str, claim: str, uid: str) -> Path:
    """A claim's directory: keyed by the object's uid too, so a re-created claim starts empty."""
    return workdir / namespace / "pvc" / claim / uid


class JobController:
    """Drives Jobs through ``api``; ``slots`` caps the pods running at once across all Jobs."""

    def __init__(
        self, api: KubeApi, slots: asyncio.Semaphore, settings: Settings, zygote: Zygote | None = None
    ) -> None:
        self._api = api
        self._slots = slots
        self._settings = settings
        self._zygote = zygote
        self._volumes = settings.volumes or VolumeFilesystems(settings.workdir, "off")
        self._in_flight: set[Path] = set()  # directories of the pods this runner creates and runs

    async def drive(self, job: Mapping[str, Any]) -> bool:
        """Run ``job`` to its end. True when it is over (or gone); False when it is suspended."""
        ns, name, uid = _identity(job)
        fresh = await self._api.get(job_path(ns, name))
        if fresh is None or fresh["metadata"].get("uid") != uid or job_is_finished(fresh):
            return True
        if fresh.get("spec", {}).get("suspend"):
            return False
        spec, status = fresh.get("spec", {}), fresh.get("status") or {}
        conditions = status.get("conditions") or []
        if any(c.get("type") == "Suspended" and c.get("status") == "True" for c in conditions):
            conditions = set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", _now())
            start = _now()  # Kubernetes restarts the deadline clock on resume
        else:
            start = parse_time(status["startTime"]) if status.get("startTime") else _now()
        succeeded, failed = await self._count_pods(ns, uid)
        deadline = job_deadline(spec, start)

        async def report(active: int, verdict: Verdict | None = None) -> None:
            body = job_status(
                start_time=start, active=active, succeeded=succeeded, failed=failed,
                now=_now(), verdict=verdict, conditions=conditions,
            )  # fmt: skip
            await self._api.merge_patch(job_path(ns, name) + "/status", {"status": body})

        await report(0)
        retry = False
        while (
            verdict := job_verdict(spec, succeeded=succeeded, failed=failed, start_time=start, now=_now())
        ) is None:
            remaining = (deadline - _now()).total_seconds() if deadline else None
            if retry:  # back off before a replacement pod, but not past the deadline
                delay = min(self._settings.retry_delay * 2 ** (failed - 1), MAX_RETRY_DELAY)
                await asyncio.sleep(delay if remaining is None else min(delay, remaining))
                retry = False
                continue
            try:
                await asyncio.wait_for(self._slots.acquire(), remaining)
            except TimeoutError:
                continue  # the deadline passed while queued
            try:
                ok = await self._run_pod(fresh, deadline, report)
            finally:
                self._slots.release()
            succeeded, failed, retry = succeeded + ok, failed + (not ok), not ok
        await report(0, verdict)
        log.info("Job %s/%s: %s (%s)", ns, name, verdict.type, verdict.reason)
        return True

    async def suspend(self, job: Mapping[str, Any], driver: asyncio.Task[bool]) -> bool:
        """Stop ``driver``, delete the active pod (it does not count as failed), mark the Job Suspended."""
        ns, name, uid = _identity(job)
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)
        for pod in await self._owned_pods(ns, uid):
            if not pod_is_finished(pod):
                await self._api.delete(pod_path(ns, pod["metadata"]["name"]))
        fresh = await self._api.get(job_path(ns, name))
        if fresh is not None:
            conditions = (fresh.get("status") or {}).get("conditions") or []
            conditions = set_condition(
                conditions, "Suspended", "True", "JobSuspended", "Job suspended", _now()
            )
            patch = {"status": {"active": None, "conditions": conditions}}
            await self._api.merge_patch(job_path(ns, name) + "/status", patch)
        return False

    async def _run_pod(self, job: Mapping[str, Any], deadline: datetime | None, report: Report) -> bool:
        ns, name, _ = _identity(job)
        pod = await self._create_pod(job)
        pod_name = pod["metadata"]["name"]
        try:
            return await self._run_created_pod(job, pod, deadline, report)
        finally:
            self._in_flight.discard(pod_dir(self._settings.workdir, ns, pod_name))

    async def _run_created_pod(
        self, job: Mapping[str, Any], pod: dict[str, Any], deadline: datetime | None, report: Report
    ) -> bool:
        ns, name, _ = _identity(job)
        pod_name = pod["metadata"]["name"]
        await report(1)

        async def publish(status: dict[str, Any]) -> None:
            try:
                await self._api.merge_patch(pod_path(ns, pod_name) + "/status", {"status": status})
            except _API_ERRORS as e:  # keep the processes running; the next report may pass
                log.warning("Pod %s/%s: status not written: %s", ns, pod_name, e)

        async def make_plan() -> PodPlan:
            return plan_pod(
                job,
                pod_name=pod_name,
                pod_dir=pod_dir(self._settings.workdir, ns, pod_name),
                refs=await self._fetch_refs(ns, pod_template_spec(job)),
                base_env=self._settings.base_env,
                runner_uid=os.geteuid(),
            )

        run = PodRun(
            pod["spec"], publish, self._settings.confiner,
            sandbox=self._settings.sandbox, max_grace=self._settings.max_grace, limits=self._settings.limits,
            volumes=self._volumes, zygote=self._zygote,
        )  # fmt: skip
        timer = None
        if deadline is not None:
            delay = max(0.0, (deadline - _now()).total_seconds())
            timer = asyncio.get_running_loop().call_later(
                delay, run.kill, "DeadlineExceeded", DEADLINE_MESSAGE
            )
        try:
            ok = await run.run(make_plan)
        finally:
            if timer is not None:
                timer.cancel()
        log.info("Pod %s/%s (job %s): %s", ns, pod_name, name, "succeeded" if ok else "failed")
        return ok

    async def _create_pod(self, job: Mapping[str, Any]) -> dict[str, Any]:
        ns, name, _ = _identity(job)
        for _attempt in range(5):  # name clashes are unlikely, but a clash is not a failure
            pod_name = f"{name}-{''.join(random.choices(NAME_ALPHABET, k=5))}"
            directory = pod_dir(self._settings.workdir, ns, pod_name)
            self._in_flight.add(directory)  # before the Pod exists: a sweep never takes its directory
            try:
                return await self._api.create(pods_path(ns), pod_manifest(job, pod_name))
            except BaseException as e:
                self._in_flight.discard(directory)
                if not isinstance(e, ApiError) or e.status != 409:
                    raise
        raise RuntimeError(f"could not find a free pod name for job {ns}/{name}")

    async def _fetch_refs(self, ns: str, pod_spec: Mapping[str, Any]) -> PodRefs:
        """What the pod refers to, and the NetworkPolicies in force when it starts."""
        secret_names, config_map_names = referenced_objects(pod_spec)
        secrets = {n: await self._api.get(core_path(ns, "secrets", n)) for n in secret_names}
        config_maps = {n: await self._api.get(core_path(ns, "configmaps", n)) for n in config_map_names}
        claims = {
            n: await self._api.get(core_path(ns, "persistentvolumeclaims", n))
            for n in referenced_claims(pod_spec)
        }
        policies, _ = await self._api.list(network_policies_path(ns))
        workdir = self._settings.workdir
        return PodRefs(
            secrets={n: secret_data(s) for n, s in secrets.items() if s is not None},
            config_maps={n: config_map_data(c) for n, c in config_maps.items() if c is not None},
            claims={
                n: claim_dir(workdir, ns, n, c["metadata"]["uid"]) for n, c in claims.items() if c is not None
            },
            claim_sizes={n: size for n, c in claims.items() if c is not None and (size := claim_storage(c))},
            network_policies=policies,
        )

    # --- Sweeps: what deleted objects leave on disk ------------------------------------------

    async def sweep_pods(self, ns: str) -> None:
        """Remove the directories (and file systems) of the namespace's pods that are gone from the API."""
        root = self._settings.workdir / ns
        if not await asyncio.to_thread(root.is_dir):
            return
        pods, _ = await self._api.list(pods_path(ns))  # after any directory it may have to keep was made
        live = {p["metadata"]["name"] for p in pods}

        def sweep() -> None:
            for entry in list(root.iterdir()):
                if entry.name != "pvc" and entry.name not in live and entry not in self._in_flight and entry.is_dir():
                    self._volumes.remove_pod(entry)

        await asyncio.shield(asyncio.to_thread(sweep))

    async def remove_claim(self, ns: str, name: str, uid: str) -> None:
        """A claim was deleted: free its directory (once the pods using it are over)."""
        volume = claim_dir(self._settings.workdir, ns, name, uid)
        await asyncio.shield(asyncio.to_thread(self._volumes.remove_claim, volume))

    async def sweep_claims(self, namespaces: Iterable[str], live: set[tuple[str, str, str]], listed_at: float) -> None:
        """Free the directories of claims not in ``live`` (``(namespace, name, uid)``, as listed at ``listed_at``)."""
        workdir = self._settings.workdir

        def sweep() -> None:
            for ns in namespaces:
                with contextlib.suppress(OSError):
                    for claim in list((workdir / ns / "pvc").iterdir()):
                        for volume in list(claim.iterdir()):
                            if (ns, claim.name, volume.name) not in live:
                                self._volumes.remove_claim(volume, unless_prepared_since=listed_at)

        await asyncio.shield(asyncio.to_thread(sweep))

    def namespaces_on_disk(self) -> list[str]:
        """The namespaces this runner has directories for (blocking, but one directory)."""
        with contextlib.suppress(OSError):
            return [e.name for e in self._settings.workdir.iterdir() if e.is_dir() and not e.name.startswith(".")]
        return []

    async def _owned_pods(self, ns: str, uid: str) -> list[dict[str, Any]]:
        pods, _ = await self._api.list(pods_path(ns), label_selector=f"controller-uid={uid}")
        return [
            p for p in pods if any(ref.get("uid") == uid for ref in p["metadata"].get("ownerReferences", []))
        ]

    async def _count_pods(self, ns: str, uid: str) -> tuple[int, int]:
        """Succeeded and failed pods so far, after failing those a previous runner left active."""
        succeeded = failed = 0
        for pod in await self._owned_pods(ns, uid):
            if not pod_is_finished(pod):
                abandoned = {
                    "phase": "Failed",
                    "reason": "RunnerRestarted",
                    "message": "The local job runner stopped while this pod was active",
                }
                await self._api.merge_patch(
                    pod_path(ns, pod["metadata"]["name"]) + "/status", {"status": abandoned}
                )
                failed += 1
            elif pod["status"]["phase"] == "Succeeded":
                succeeded += 1
            else:
                failed += 1
        return succeeded, failed


def _identity(job: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = job["metadata"]
    return meta.get("namespace", "default"), meta["name"], meta["uid"]


def _now() -> datetime:
    return datetime.now(UTC)
