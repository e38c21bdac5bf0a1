"""Playground flow: check the holdout, store the split, publish status, close competitions."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from podium.api.meta import utcnow
from podium.api.playground import PlaygroundSpec
from podium_operator import k8s
from podium_operator.controller import Controller
from podium_operator.flows.leaderboard import refresh_leaderboard
from podium_operator.reconcile.playground import reconcile_playground as reconcile_playground_status
from podium_operator.reconcile.validation import parse_spec


def _holdout_split(spec: PlaygroundSpec, private_prefix: str) -> dict[str, Any]:
    """Runs in a worker thread: copy the holdout below the operator-only prefix, split it, store the split.

    Evaluations read only the copy (``status.holdout``): the source may change, or be a local path no
    Job can read, and a Job is never pointed at the participant-facing source.
    """
    from podium import data, storage
    from podium.split import compute_split

    features, labels = spec.holdout.features, spec.holdout.labels
    if not storage.exists(features):
        raise FileNotFoundError(f"holdout.features: {features} does not exist or is not readable by the operator")
    with tempfile.TemporaryDirectory() as scratch:
        local_features = storage.download(features, Path(scratch) / "features" / storage.parse(features).name)
        local_labels = storage.download(labels, Path(scratch) / "labels" / storage.parse(labels).name)
        y = data.read_labels(local_labels)
        if len(y) == 0:
            raise ValueError(f"holdout.labels: {labels} holds no rows")
        digest = hashlib.sha256()
        for path in (local_features, local_labels):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        sha = digest.hexdigest()
        snapshot = f"{private_prefix}/holdout/{sha[:16]}"  # content-addressed: never reused for other data
        result: dict[str, Any] = {"holdoutRows": len(y), "holdout": {
            "features": storage.upload(local_features, f"{snapshot}/features{local_features.suffix}"),
            "labels": storage.upload(local_labels, f"{snapshot}/labels{local_labels.suffix}"),
            "sourceFeatures": features, "sourceLabels": labels, "sha256": sha,
        }}
    if spec.competition is not None:
        competition = spec.competition
        split = compute_split(
            y, private_fraction=competition.private_fraction, seed=competition.seed,
            stratify=spec.task == "classification",
        )
        split_uri = f"{private_prefix}/split.json"
        storage.write_bytes(split_uri, split.to_json().encode())
        result["split"] = {
            "uri": split_uri, "publicRows": len(split.public), "privateRows": len(split.private),
            "seed": competition.seed, "privateFraction": competition.private_fraction,
        }
    return result


def _split_is_current(status: dict[str, Any], spec: PlaygroundSpec) -> bool:
    snapshot = status.get("holdout") or {}
    if (snapshot.get("sourceFeatures"), snapshot.get("sourceLabels")) != (spec.holdout.features, spec.holdout.labels):
        return False
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
            holdout = await asyncio.to_thread(_holdout_split, spec, ctl.config.private_prefix(namespace, name))
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


async def waiting_submissions(ctl: Controller, namespace: str, playground: str) -> list[str]:
    return [
        s["metadata"]["name"] for s in await ctl.kube.list(k8s.SUBMISSIONS, namespace)
        if (s.get("spec") or {}).get("playground") == playground
        and (s.get("status") or {}).get("phase") in (None, "Pending")
    ]
