"""Local mode's KServe: watch InferenceServices, run their predictors and routers, write their status.

For each InferenceService (all namespaces) the controller keeps a router on its own loopback port and one
predictor process per live revision (:mod:`.revisions` decides which, and the split); a predictor's
artifact is fetched first (:mod:`.storage`, with the controller's object-store credentials: the predictor
gets none). Every change (the object, a predictor getting ready or failing) re-plans that one service,
updates its router, starts what is new, drains and stops what is gone, and writes the status KServe would
(a merge patch of the status subresource; nothing when unchanged). The routers' metrics are on
:attr:`ServingController.metrics_url`; a :class:`~.prometheus.Prometheus`, if given, is told every target,
and a predictor gets its first request only once Prometheus has scraped it (its counters' first samples
are then 0, so ``increase()`` counts every request, even a burst right after it got ready).

Gaps: replicas (one process per revision), resources (not enforced), transformers/explainers, tag routing
by host name (a tagged traffic entry's ``url`` is its predictor's own address), ServingRuntime selection
(the command is fixed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import prometheus_client

from podium_operator.local.background import BackgroundService
from podium_operator.local.jobrunner.kube import ApiError, KubeApi
from podium_operator.local.serving.predictors import DEFAULT_COMMAND, Predictor, host_env
from podium_operator.local.serving.prometheus import Prometheus
from podium_operator.local.serving.revisions import FAILED, Instance, Memory, State, merge_patch, plan
from podium_operator.local.serving.router import Router, RouterMetrics
from podium_operator.local.serving.storage import ArtifactCache, S3Access

ISVCS = "/apis/serving.kserve.io/v1beta1/inferenceservices"
log = logging.getLogger(__name__)
_API_ERRORS = (aiohttp.ClientError, ApiError, TimeoutError)


def isvc_path(namespace: str, name: str) -> str:
    return f"/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _newer(obj: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
    """Whether ``obj`` is not older than ``than`` (by resourceVersion, where both are numbers)."""
    if than is None:
        return True
    a, b = (str(o.get("metadata", {}).get("resourceVersion", "")) for o in (obj, than))
    return not (a.isdigit() and b.isdigit()) or int(a) >= int(b)


class Served:
    """One InferenceService: its latest object, router, predictors and what the planner remembers."""

    def __init__(self, controller: ServingController, isvc: dict[str, Any], router: Router) -> None:
        meta = isvc["metadata"]
        self.namespace, self.name = meta.get("namespace", "default"), meta["name"]
        self.controller = controller
        self.isvc = isvc
        self.router = router
        self.memory = Memory()
        self.predictors: dict[str, Predictor] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.retiring: set[asyncio.Task[None]] = set()
        self.written: dict[str, Any] | None = None
        self.dirty = asyncio.Event()
        self.dirty.set()
        self.task = asyncio.create_task(self._loop(), name=f"serve {self.namespace}/{self.name}")

    def seen(self, isvc: dict[str, Any]) -> None:
        if _newer(isvc, self.isvc):
            self.isvc = isvc
            self.dirty.set()

    async def _loop(self) -> None:
        await self.router.start()
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            try:
                await self._reconcile()
            except _API_ERRORS as e:
                log.warning("InferenceService %s/%s: status not written: %s", self.namespace, self.name, e)
                await asyncio.sleep(0.5)
                self.dirty.set()
            except Exception:  # a bad object or a bug: keep serving what runs, try again later
                log.exception("InferenceService %s/%s: reconcile failed", self.namespace, self.name)
                await asyncio.sleep(2.0)
                self.dirty.set()

    async def _reconcile(self) -> None:
        states = {i: p.state for i, p in self.predictors.items()}
        result = plan(self.isvc, states, self.memory, url=self.router.url, now=_now())
        self.memory = result.memory
        wanted = {i.id: i for i in result.instances}
        for instance in result.instances:
            if instance.id not in self.predictors:
                self._start(instance)
        self.router.update({i: self.predictors[i] for i in wanted}, result.weights, result.mirror,
                           result.shadow_submission, result.revisions)
        for gone in [i for i in self.predictors if i not in wanted]:
            self._retire(gone)
        self.controller.targets_changed()
        patch = merge_patch(self.isvc.get("status") or {}, result.status)
        if patch and result.status != self.written:  # (what the server normalized is not written again)
            updated = await self.controller.api.merge_patch(f"{isvc_path(self.namespace, self.name)}/status",
                                                            {"status": patch})
            self.written = result.status
            if updated is not None:
                self.seen(updated)

    def _start(self, instance: Instance) -> None:
        c = self.controller
        uri = instance.model.storage_uri
        log_path = c.workdir / self.namespace / self.name / f"{instance.revision}-{instance.model.key}.log"
        gate = c.scraped_once if c.prometheus is not None else None
        predictor = Predictor(instance, c.cache.path_for(uri) / "model", log_path, command=c.command,
                              base_env=c.base_env, on_change=self.dirty.set, ready_gate=gate)
        self.predictors[instance.id] = predictor
        self.tasks[instance.id] = asyncio.create_task(self._supervise(predictor), name=f"predictor {instance.id}")

    async def _supervise(self, predictor: Predictor) -> None:
        try:
            await asyncio.to_thread(self.controller.cache.fetch, predictor.instance.model.storage_uri)
        except Exception as e:  # the storage initializer failed: the pod never starts
            predictor.state = State(FAILED, message=f"storage initializer: {e}", exit_code=1)
            self.dirty.set()
            return
        await predictor.run(self.controller.proxy_session)

    def _retire(self, instance_id: str) -> None:
        """No longer routed to: let its requests in flight finish, then stop it."""
        predictor = self.predictors.pop(instance_id)
        task = self.tasks.pop(instance_id)

        async def retire() -> None:
            await predictor.drain()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        retiring = asyncio.create_task(retire())
        self.retiring.add(retiring)
        retiring.add_done_callback(self.retiring.discard)

    async def stop(self) -> None:
        self.task.cancel()
        tasks = [*self.tasks.values(), *self.retiring]
        for task in tasks:
            task.cancel()
        await asyncio.gather(self.task, *tasks, return_exceptions=True)
        await self.router.stop()


class ServingController(BackgroundService):
    """Serves the InferenceServices found through the API at ``api_url`` until stopped (its own thread)."""

    thread_name = "podium-serving"
    display_name = "The serving controller"

    def __init__(self, api_url: str, workdir: Path, s3: S3Access, *, command: Sequence[str] = DEFAULT_COMMAND,
                 base_env: Mapping[str, str] | None = None, prometheus: Prometheus | None = None,
                 metrics_port: int = 0) -> None:
        super().__init__()
        self.api_url = api_url
        self.workdir = Path(workdir)
        self.cache = ArtifactCache(self.workdir / "models", s3)
        self.command = tuple(command)
        self.base_env = dict(base_env if base_env is not None else host_env())
        self.prometheus = prometheus
        self.registry = prometheus_client.CollectorRegistry()
        self.metrics = RouterMetrics(self.registry)
        self._metrics_port = metrics_port
        self._served: dict[str, Served] = {}  # by uid
        self._targets: list[tuple[str, dict[str, str]]] = []

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self._metrics_port}/metrics"

    def served(self) -> dict[tuple[str, str], Served]:
        """The services by (namespace, name); read them in the controller's thread only (tests peek)."""
        return {(s.namespace, s.name): s for s in self._served.values()}

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as api_session, \
                aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300),
                                      auto_decompress=False, skip_auto_headers=("User-Agent",)) as proxy:
            self.api = KubeApi(self.api_url, api_session)
            self.proxy_session = proxy
            metrics = await self._serve_metrics()
            try:
                items, version = await self.api.list(ISVCS)
                self._relisted(items)
                ready.set()
                watcher = asyncio.create_task(self._watch(version))
                await self._stopping.wait()
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                await asyncio.gather(*(s.stop() for s in self._served.values()), return_exceptions=True)
                self._served.clear()
            finally:
                await metrics.cleanup()

    async def _serve_metrics(self) -> aiohttp.web.AppRunner:
        async def serve(_: aiohttp.web.Request) -> aiohttp.web.Response:
            return aiohttp.web.Response(body=prometheus_client.generate_latest(self.registry),
                                        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

        app = aiohttp.web.Application()
        app.router.add_get("/metrics", serve)
        runner = aiohttp.web.AppRunner(app, access_log=None)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, "127.0.0.1", self._metrics_port).start()
        self._metrics_port = int(runner.addresses[0][1])
        return runner

    async def _watch(self, version: str) -> None:
        while True:
            try:
                async for event in self.api.watch(ISVCS, resource_version=version):
                    obj = event.get("object", {})
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        await self._on_event(event["type"], obj)
            except _API_ERRORS as e:
                log.debug("Watch of InferenceServices interrupted: %s", e)
                await asyncio.sleep(0.5)
            with contextlib.suppress(*_API_ERRORS):
                items, version = await self.api.list(ISVCS)
                self._relisted(items)

    def _relisted(self, items: Sequence[dict[str, Any]]) -> None:
        present = {i["metadata"].get("uid") for i in items}
        for uid in [u for u in self._served if u not in present]:
            asyncio.create_task(self._forget(uid))
        for item in items:
            asyncio.create_task(self._on_event("ADDED", item))

    async def _on_event(self, kind: str, isvc: dict[str, Any]) -> None:
        uid = isvc.get("metadata", {}).get("uid")
        if not uid:
            return
        if kind == "DELETED":
            await self._forget(uid)
            return
        served = self._served.get(uid)
        if served is None:
            router = Router(isvc["metadata"].get("namespace", "default"), isvc["metadata"]["name"],
                            self.proxy_session, self.metrics)
            self._served[uid] = Served(self, isvc, router)
        else:
            served.seen(isvc)

    async def _forget(self, uid: str) -> None:
        served = self._served.pop(uid, None)
        if served is not None:
            await served.stop()
            self.targets_changed()

    def targets_changed(self) -> None:
        """Tell Prometheus every ready predictor and the controller itself."""
        if self.prometheus is None:
            return
        targets = [(f"127.0.0.1:{self._metrics_port}", {"job": "podium-serving"})]
        for s in self._served.values():
            for predictor in s.predictors.values():
                if predictor.address is not None:  # from its start: scraped before its first request
                    targets.append((predictor.address, {"job": "podium-predictor", "namespace": s.namespace,
                                                        "inference_service": s.name,
                                                        "revision": predictor.instance.revision}))
        if targets != self._targets:
            self._targets = targets
            self.prometheus.set_targets(targets)

    async def scraped_once(self, address: str, timeout: float = 20.0) -> None:
        """Return once Prometheus has scraped ``address`` (or after ``timeout``): its counters' first samples
        then hold no request, so ``increase()`` counts every one. (Prometheus hands new file_sd targets to its
        scrapers every 5 s, measured 4.5-5.7 s here; the predictor's own start-up overlaps with that.)"""
        assert self.prometheus is not None
        url = f"{self.prometheus.url}/api/v1/query"
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError, IndexError):
                params = {"query": f'up{{job="podium-predictor",instance="{address}"}}'}
                async with self.proxy_session.get(url, params=params) as response:
                    result = (await response.json())["data"]["result"]
                    if result and result[0]["value"][1] == "1":
                        return
            await asyncio.sleep(0.2)
        log.info("Prometheus has not scraped predictor %s after %.0fs; serving it anyway", address, timeout)
