"""Leaderboard flow: recompute a Playground's public (and, once closed, private) board from its Submissions."""

from __future__ import annotations

import asyncio
from typing import Any

from podium.api.meta import utcnow
from podium.api.playground import PlaygroundSpec
from podium.evaluation.wire import MAX_RESULT_BYTES, PrivateResult
from podium_operator import k8s, metrics
from podium_operator.controller import Controller
from podium_operator.flows.recommendations import refresh_recommendations
from podium_operator.flows.records import playground_records
from podium_operator.reconcile.leaderboard import leaderboard_rows
from podium_operator.reconcile.playground import competition_closed
from podium_operator.reconcile.validation import parse_spec


async def _private_scores(ctl: Controller, namespace: str, playground: str, playground_uid: str,
                          uids: list[str]) -> dict[str, dict]:
    """The private metrics of each Submission uid that has them."""
    from podium import storage

    scores: dict[str, dict[str, float]] = {}
    for uid in uids:
        uri = ctl.config.private_scores_uri(namespace, playground, playground_uid, uid)
        try:
            data = await asyncio.to_thread(storage.read_bytes, uri, limit=MAX_RESULT_BYTES)
            scores[uid] = PrivateResult.from_json(data, source=uri).private
        except (OSError, ValueError):  # missing, too large or malformed (PodiumError is a ValueError)
            continue
    return scores


async def refresh_leaderboard(ctl: Controller, namespace: str, name: str) -> None:
    """Recompute the boards from the operator's records; serialised per playground so no update is lost.

    Refreshes coalesce: a caller that finds one already queued returns at once, since the queued one
    lists the Submissions after the caller's own status change. A burst of N finishing submissions
    costs a few LISTs rather than N.
    """
    key = (namespace, name)
    if key in ctl.leaderboard_refresh_queued:
        return
    ctl.leaderboard_refresh_queued.add(key)
    async with ctl.leaderboard_locks[key]:
        ctl.leaderboard_refresh_queued.discard(key)
        playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, name)
        if playground is None:
            return
        spec, _ = parse_spec(PlaygroundSpec, playground.get("spec") or {})
        if spec is None:
            return
        # The records say what was decided; the list of Submissions only which ones still exist.
        alive = {s["metadata"]["uid"] for s in await ctl.kube.list(k8s.SUBMISSIONS, namespace)}
        uid = playground["metadata"]["uid"]
        records = [r for r in await playground_records(ctl, namespace, name, uid) if r.uid in alive]
        public = leaderboard_rows(records, spec, limit=spec.leaderboard_size)
        patch: dict[str, Any] = {
            "leaderboard": public,
            "submissionCount": sum(1 for r in records if r.version is not None),
        }
        if competition_closed(spec, utcnow()):
            uids = [r.uid for r in records if r.track == "competition" and r.phase == "Evaluated"]
            private = await _private_scores(ctl, namespace, name, uid, uids)
            patch["privateLeaderboard"] = leaderboard_rows(
                records, spec, private_scores=private, limit=spec.leaderboard_size)
        if public:
            metrics.BEST_SCORE.labels(namespace, name).set(public[0]["score"])
        await ctl.patch_status(k8s.PLAYGROUNDS, playground, patch)
    await refresh_recommendations(ctl, namespace)  # what ranks well here is proposed to similar playgrounds
