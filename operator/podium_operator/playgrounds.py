"""Playground I/O glue: check the holdout, store the split, publish leaderboards, close competitions."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from podium.api.playground import PlaygroundSpec
from podium_operator import k8s, metrics
from podium_operator.reconcile.leaderboard import leaderboard_rows
from podium_operator.reconcile.playground import competition_closed
from podium_operator.reconcile.playground import reconcile_playground as reconcile_playground_status
from podium_operator.reconcile.validation import parse_spec
from podium_operator.submissions import Controller, utcnow


def _holdout_split(features: str, labels: str, spec: PlaygroundSpec, split_uri: str) -> dict[str, Any]:
    """Runs in a worker thread: check the holdout is readable, split it, store the split privately."""
    from podium import data, storage
    from podium.split import compute_split

    if not storage.exists(features):
        raise FileNotFoundError(f"holdout.features: {features} does not exist or is not readable by the operator")
    with tempfile.TemporaryDirectory() as scratch:
        local = storage.download(labels, Path(scratch) / Path(labels).name)
        y = data.read_labels(local)
    if len(y) == 0:
        raise ValueError(f"holdout.labels: {labels} holds no rows")
    result: dict[str, Any] = {"holdoutRows": len(y)}
    if spec.competition is not None:
        competition = spec.competition
        split = compute_split(
            y, private_fraction=competition.private_fraction, seed=competition.seed,
            stratify=spec.task == "classification",
        )
        storage.write_bytes(split_uri, split.to_json().encode())
        result["split"] = {
            "uri": split_uri, "publicRows": len(split.public), "privateRows": len(split.private),
            "seed": competition.seed, "privateFraction": competition.private_fraction,
        }
    return result


def _split_is_current(status: dict[str, Any], spec: PlaygroundSpec) -> bool:
    split = status.get("split") or {}
    if spec.competition is None:
        return not split and status.get("holdoutRows") is not None
    return split.get("seed") == spec.competition.seed and split.get(
        "privateFraction") == spec.competition.private_fraction


async def reconcile_playground(ctl: Controller, playground: dict[str, Any]) -> dict[str, Any]:
    """Validate, check the holdout, split it, publish status. Returns the status patch written."""
    meta = playground["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = dict(playground.get("status") or {})
    spec, _ = parse_spec(PlaygroundSpec, playground.get("spec") or {})
    holdout: dict[str, Any] = {}
    problem = None
    if spec is not None and not _split_is_current(status, spec):
        try:
            holdout = await asyncio.to_thread(
                _holdout_split, spec.holdout.features, spec.holdout.labels, spec,
                ctl.config.split_uri(namespace, name),
            )
        except (OSError, ValueError) as error:
            problem = str(error)
    outcome = reconcile_playground_status(
        playground.get("spec") or {}, generation=meta.get("generation"), status=status, now=utcnow(),
        holdout_problem=problem,
    )
    patch = {**outcome.status_patch, **holdout}
    for event_type, reason, message in outcome.events:
        ctl.post_event(playground, event_type, reason, message)
    await ctl.patch_status(k8s.PLAYGROUNDS, playground, patch)
    if outcome.ready:
        await refresh_leaderboard(ctl, namespace, name)
    return patch


async def _private_scores(ctl: Controller, namespace: str, playground: str, names: list[str]) -> dict[str, dict]:
    from podium import storage

    scores: dict[str, dict[str, float]] = {}
    for name in names:
        uri = ctl.config.private_scores_uri(namespace, playground, name)
        try:
            data = json.loads(await asyncio.to_thread(storage.read_bytes, uri))
        except (OSError, ValueError):
            continue
        scores[name] = {k: float(v) for k, v in (data.get("private") or {}).items() if isinstance(v, int | float)}
    return scores


async def refresh_leaderboard(ctl: Controller, namespace: str, name: str) -> None:
    """Recompute the boards from every Submission; serialised per playground so no update is lost.

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
        submissions = [s for s in await ctl.kube.list(k8s.SUBMISSIONS, namespace)
                       if (s.get("spec") or {}).get("playground") == name]
        public = leaderboard_rows(submissions, spec, limit=spec.leaderboard_size)
        patch: dict[str, Any] = {
            "leaderboard": public,
            "submissionCount": sum(1 for s in submissions if (s.get("status") or {}).get("version") is not None),
        }
        if competition_closed(spec, utcnow()):
            names = [s["metadata"]["name"] for s in submissions if (s.get("spec") or {}).get("track") == "competition"]
            private = await _private_scores(ctl, namespace, name, names)
            patch["privateLeaderboard"] = leaderboard_rows(
                submissions, spec, private_scores=private, limit=spec.leaderboard_size)
        if public:
            metrics.BEST_SCORE.labels(namespace, name).set(public[0]["score"])
        await ctl.patch_status(k8s.PLAYGROUNDS, playground, patch)


async def waiting_submissions(ctl: Controller, namespace: str, playground: str) -> list[str]:
    return [
        s["metadata"]["name"] for s in await ctl.kube.list(k8s.SUBMISSIONS, namespace)
        if (s.get("spec") or {}).get("playground") == playground
        and (s.get("status") or {}).get("phase") in (None, "Pending")
    ]
