"""An InferenceService's router: a reverse proxy on its own loopback port that splits traffic by weight.

- The split is smooth weighted round robin (nginx's): over any run of ``sum(weights)`` requests each
  predictor gets exactly its weight, spread evenly, so a 10% canary gets every tenth request.
- A connection error (a predictor starting or going away) is retried once on another ready predictor, so
  the client never sees it; dropped predictors are drained (their requests in flight finish) before they stop.
- Mirroring: each answer of the stable predictor is copied (request and answer) into a bounded queue, and a
  background task sends the request to the shadow and compares the answers (V1 ``predictions``, V2 output
  ``label``): ``podium_router_shadow_requests_total{outcome=agree|disagree|error}``. The client's answer never
  waits for it; a full queue drops the copy.
- ``GET /metrics`` is the ready predictors' ``/metrics``, merged by family, each sample labelled ``revision``.
- Every answer carries ``x-podium-submission``: the submission (``PODIUM_SUBMISSION``) of the predictor that
  gave it (the predictor's own header wins if it sends one).
- One keep-alive client session for everything; no per-request logging.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import aiohttp.web
import prometheus_client
from prometheus_client.metrics_core import Metric

from podium_operator.local.serving.predictors import Predictor
from podium_operator.local.serving.revisions import READY

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade",
                        "content-encoding", "date", "server", "proxy-connection", "te", "trailer"})
MIRROR_QUEUE = 256
SUBMISSION_HEADER = "x-podium-submission"  # on every answer: the submission whose predictor gave it
_RETRYABLE = (aiohttp.ClientConnectionError, asyncio.TimeoutError)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?(\s.*)$")


class SmoothWeighted:
    """Smooth weighted round robin over ``weights`` (positive ints); :meth:`pick` may skip some keys."""

    def __init__(self, weights: Mapping[str, int]) -> None:
        self.weights = {k: w for k, w in weights.items() if w > 0}
        self._current = dict.fromkeys(self.weights, 0)

    def pick(self, exclude: Iterable[str] = ()) -> str | None:
        skip = set(exclude)
        candidates = [k for k in self.weights if k not in skip]
        if not candidates:
            return None
        total = sum(self.weights[k] for k in candidates)
        for k in candidates:
            self._current[k] += self.weights[k]
        best = max(candidates, key=lambda k: self._current[k])
        self._current[best] -= total
        return best


class RouterMetrics:
    """The routers' metrics (contract names), in the controller's registry."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.requests = prometheus_client.Counter(
            "podium_router_requests", "Requests the router answered, by the revision that answered and code.",
            ["namespace", "inference_service", "revision", "code"], registry=registry)
        self.overhead = prometheus_client.Histogram(
            "podium_router_overhead_seconds", "Latency the router adds to a request (its time less the predictor's).",
            ["namespace", "inference_service"], registry=registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1))
        self.shadow = prometheus_client.Counter(
            "podium_router_shadow_requests", "Mirrored requests, by how the shadow's answer compared.",
            ["namespace", "inference_service", "submission", "outcome"], registry=registry)


def compare(stable: bytes, shadow: bytes) -> str:
    """``agree`` when the shadow predicted what the stable did (V1 ``predictions``, V2 output ``label``)."""
    try:
        a, b = json.loads(stable), json.loads(shadow)
    except ValueError:
        return "error"
    if isinstance(a, dict) and "predictions" in a:
        return "agree" if isinstance(b, dict) and b.get("predictions") == a["predictions"] else "disagree"

    def label(answer: Any) -> Any:
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        found = [o.get("data") for o in outputs or [] if isinstance(o, dict) and o.get("name") == "label"]
        return found[0] if found else None

    if label(a) is None:
        return "error"
    return "agree" if label(b) == label(a) else "disagree"


def merge_metrics(texts: Iterable[tuple[str, str]]) -> str:
    """Prometheus texts ``(revision, text)`` as one: a family's header once, every sample labelled ``revision``."""
    families: dict[str, tuple[list[str], list[str]]] = {}
    for revision, text in texts:
        current = None
        for line in text.splitlines():
            if line.startswith(("# HELP ", "# TYPE ")):
                current = line.split(" ", 3)[2]
                headers, _ = families.setdefault(current, ([], []))
                if not any(h.startswith(line[:7]) for h in headers):
                    headers.append(line)
            elif line and not line.startswith("#"):
                match = _SAMPLE.match(line)
                if match is None:
                    continue
                name, labels, rest = match.groups()
                label = f'revision="{revision}"'
                labels = f"{{{label},{labels[1:]}" if labels and labels != "{}" else f"{{{label}}}"
                family = current if current is not None and name.startswith(current) else name
                families.setdefault(family, ([], []))[1].append(f"{name}{labels}{rest}")
    return "".join(f"{line}\n" for headers, samples in families.values() for line in (*headers, *samples))


class Router:
    """Serves one InferenceService on ``127.0.0.1:port`` until :meth:`stop`; :meth:`update` sets the split."""

    def __init__(self, namespace: str, name: str, session: aiohttp.ClientSession, metrics: RouterMetrics) -> None:
        self.namespace, self.name = namespace, name
        self._session = session
        self._metrics = metrics
        self._overhead = metrics.overhead.labels(namespace, name)
        self._counters: dict[tuple[str, int], Any] = {}
        self._predictors: dict[str, Predictor] = {}
        self._split = SmoothWeighted({})
        self._revisions: Mapping[str, str] = {}
        self._mirror: tuple[str, str] | None = None
        self._shadow_submission = ""
        self._queue: asyncio.Queue[tuple[str, str, bytes, dict[str, str], bytes]] = asyncio.Queue(MIRROR_QUEUE)
        self._runner: aiohttp.web.ServerRunner | None = None
        self._worker: asyncio.Task[None] | None = None
        self.port = 0
        self.overheads: collections.deque[float] = collections.deque(maxlen=10_000)  # seconds, newest last

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Router:
        server = aiohttp.web.Server(self._handle, access_log=None)
        self._runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._worker = asyncio.create_task(self._mirror_loop())
        return self

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def update(self, predictors: Mapping[str, Predictor], weights: Mapping[str, int],
               mirror: tuple[str, str] | None, shadow_submission: str, revisions: Mapping[str, str]) -> None:
        """Route by ``weights`` (instance id → percent) to ``predictors``; the split restarts when it changes."""
        self._predictors = dict(predictors)
        if dict(self._split.weights) != {k: w for k, w in weights.items() if w > 0}:
            self._split = SmoothWeighted(weights)
        if mirror is not None and mirror != self._mirror:  # each outcome's series exists (at 0) before it counts
            for outcome in ("agree", "disagree", "error"):
                self._metrics.shadow.labels(self.namespace, self.name, shadow_submission, outcome)
        self._mirror, self._shadow_submission, self._revisions = mirror, shadow_submission, dict(revisions)

    def _ready(self, instance_id: str) -> Predictor | None:
        predictor = self._predictors.get(instance_id)
        return predictor if predictor is not None and predictor.state.phase == READY else None

    async def _handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if request.path == "/metrics" and request.method == "GET":
            return aiohttp.web.Response(body=await self._metrics_text(), content_type="text/plain")
        started = time.perf_counter()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        tried: list[str] = []
        upstream = 0.0
        while len(tried) < 2:
            chosen = self._split.pick(exclude=tried)
            if chosen is None:
                break
            tried.append(chosen)
            predictor = self._ready(chosen)
            if predictor is None or predictor.state.url is None:
                continue
            predictor.in_flight += 1
            sent = time.perf_counter()
            try:
                async with self._session.request(request.method, predictor.state.url + request.path_qs,
                                                 data=body, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
                    answer_headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
            except _RETRYABLE:
                upstream += time.perf_counter() - sent
                continue
            finally:
                predictor.in_flight -= 1
            upstream += time.perf_counter() - sent
            if self._mirror is not None and chosen == self._mirror[0] and status == 200:
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait((request.method, request.path_qs, body, headers, payload))
            self._count(chosen, status)
            if predictor.instance.model.submission:  # who answered (unless the predictor says so itself)
                answer_headers.setdefault(SUBMISSION_HEADER, predictor.instance.model.submission)
            reply = aiohttp.web.Response(status=status, body=payload, headers=answer_headers)
            overhead = time.perf_counter() - started - upstream
            self._overhead.observe(overhead)
            self.overheads.append(overhead)
            return reply
        self._count("", 503)
        return aiohttp.web.json_response({"error": f"no ready predictor for {self.namespace}/{self.name}"},
                                         status=503)

    def _count(self, instance_id: str, code: int) -> None:
        key = (instance_id, code)
        counter = self._counters.get(key)
        if counter is None:
            revision = self._revisions.get(instance_id, instance_id.partition("/")[0])
            counter = self._counters[key] = self._metrics.requests.labels(self.namespace, self.name, revision,
                                                                          str(code))
        counter.inc()

    async def _mirror_loop(self) -> None:
        while True:
            method, path, body, headers, stable = await self._queue.get()
            mirror, submission = self._mirror, self._shadow_submission
            shadow = self._ready(mirror[1]) if mirror is not None else None
            if shadow is None or shadow.state.url is None:
                continue
            shadow.in_flight += 1
            try:
                async with self._session.request(method, shadow.state.url + path, data=body,
                                                 headers=headers) as response:
                    answer = await response.read()
                    outcome = compare(stable, answer) if response.status == 200 else "error"
            except (TimeoutError, aiohttp.ClientError):
                outcome = "error"
            finally:
                shadow.in_flight -= 1
            self._metrics.shadow.labels(self.namespace, self.name, submission, outcome).inc()

    async def _metrics_text(self) -> bytes:
        ready = [(self._revisions.get(i, i), p) for i, p in self._predictors.items() if p.state.phase == READY]

        async def scrape(predictor: Predictor) -> str:
            try:
                async with self._session.get(f"{predictor.state.url}/metrics") as response:
                    return await response.text() if response.status == 200 else ""
            except (TimeoutError, aiohttp.ClientError):
                return ""

        texts = await asyncio.gather(*(scrape(p) for _, p in ready))
        own = prometheus_client.generate_latest(_Only(self._metrics, self.namespace, self.name))  # type: ignore[arg-type]
        return merge_metrics(zip((r for r, _ in ready), texts, strict=True)).encode() + own


class _Only:
    """The router metrics of one InferenceService, for its ``/metrics``: an operator that scrapes directly (no
    Prometheus) reads the shadow comparisons there. (Prometheus scrapes them from the controller instead.)"""

    def __init__(self, metrics: RouterMetrics, namespace: str, name: str) -> None:
        self._metrics, self._labels = metrics, {"namespace": namespace, "inference_service": name}

    def collect(self) -> Iterable[Metric]:
        for metric in (self._metrics.requests, self._metrics.shadow):
            for family in metric.collect():
                only = Metric(family.name, family.documentation, family.type)
                only.samples = [s for s in family.samples
                                if all(s.labels.get(k) == v for k, v in self._labels.items())]
                yield only
