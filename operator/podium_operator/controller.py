"""Shared state of the running operator: the Kubernetes client, the config, per-object locks."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, cast

import kopf

from podium_operator import k8s, metrics, promql
from podium_operator.reconcile.records import SubmissionRecord
from podium_operator.settings import OperatorConfig


class Controller:
    """What every flow shares: ``kube`` (all Kubernetes I/O), ``config``, and the locks that serialise writes."""

    def __init__(self, kube: k8s.KubeClient, config: OperatorConfig) -> None:
        self.kube = kube
        self.config = config
        # One operator replica (Recreate): in-process locks serialise versioning and leaderboards.
        self.playground_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.leaderboard_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.leaderboard_refresh_queued: set[tuple[str, str]] = set()
        self.submission_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.policies_ensured: set[str] = set()
        self.in_flight: set[tuple[str, str]] = set()
        # Submissions whose version this process has written to their status (no need to re-check).
        self.recorded_versions: set[tuple[str, str]] = set()
        # The operator's records (see reconcile.records) by namespace, then Submission uid: read from the
        # object store once per namespace, then kept current by this process, the only writer.
        self.records: dict[str, dict[str, SubmissionRecord]] = {}
        self.record_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Per Playground uid: the holdout source's fingerprints when its contents were last compared with the
        # snapshot (kept in memory, never in a status someone else could write: at worst one more download).
        self.holdout_fingerprints: dict[str, tuple[str, ...]] = {}
        self.deployment_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.serving_metrics = promql.Reader(config.prometheus_url)

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the object (kopf queues and posts it)."""
        kopf.event(kopf.Body(cast(kopf.RawBody, obj)), type=type_, reason=reason, message=message[:1024])

    def track(self, key: tuple[str, str], active: bool) -> None:
        (self.in_flight.add if active else self.in_flight.discard)(key)
        metrics.QUEUE_DEPTH.set(len(self.in_flight))

    async def patch_status(self, resource: k8s.Resource, obj: dict[str, Any], status: dict[str, Any]) -> dict:
        meta = obj["metadata"]
        return await self.kube.patch(resource, meta["namespace"], meta["name"], {"status": status}, subresource="status")
