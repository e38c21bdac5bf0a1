"""Playground flow: check the holdout, store the split, publish status, close competitions, clean up on delete."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

from podium.api.meta import condition_is_true, utcnow
from podium.api.playground import PlaygroundSpec
from podium.errors import InvalidHoldout
from podium_operator import k8s
from podium_operator.controller import Controller
from podium_operator.flows.leaderboard import refresh_leaderboard
from podium_operator.flows.recommendations import ensure_profile
from podium_operator.flows.records import forget_playground
from podium_operator.reconcile.playground import PlaygroundOutcome, holdout_sync
from podium_operator.reconcile.playground import reconcile_playground as reconcile_playground_status
from podium_operator.reconcile.validation import parse_spec


def _holdout_split(spec: PlaygroundSpec, private_prefix: str) -> dict[str, Any]:
    """Runs in a worker thread: copy the holdout below the operator-only prefix, split it, store the split.

    Evaluations read only the copy (``status.holdout``): the source may change, or be a local path no
    Job can read, and a Job is never pointed at the participant-facing source.
    """
    from podium import data, storage
    from podium import holdout as checks

    features, labels = spec.holdout.features, spec.holdout.labels
    if not storage.exists(features):
        raise FileNotFoundError(f"holdout.features: {features} does not exist or is not readable by the operator")
    with tempfile.TemporaryDirectory() as scratch:
        local_features = storage.download(features, Path(scratch) / "features" / storage.parse(features).name)
        local_labels = storage.download(labels, Path(scratch) / "labels" / storage.parse(labels).name)
        # Ready only if it can score: InvalidHoldout (a ValueError) names the spec field and the fix. The
        # split is by row identity (spec.holdout.idColumn, else each row's content), not by row position.
        prepared = checks.prepare(local_features, local_labels, spec)
        sha = holdout_digest([local_features, local_labels])  # of the source, which later checks compare with
        stripped = checks.without_ids(prepared.holdout, spec)
        if stripped is not None:  # what models read has no row identity in it
            (Path(scratch) / "model-features").mkdir()
            local_features = data.write_table(stripped, Path(scratch) / "model-features" / local_features.name)
        snapshot = f"{private_prefix}/holdout/{sha[:16]}"  # content-addressed: never reused for other data
        result: dict[str, Any] = {"holdoutRows": len(prepared.holdout.labels), "holdout": {
            "features": storage.upload(local_features, f"{snapshot}/features{local_features.suffix}"),
            "labels": storage.upload(local_labels, f"{snapshot}/labels{local_labels.suffix}"),
            "sourceFeatures": features, "sourceLabels": labels, "sha256": sha,
        }}
    split, competition = prepared.split, spec.competition
    if split is not None and competition is not None:
        text = split.to_json().encode()
        split_uri = f"{private_prefix}/split-{hashlib.sha256(text).hexdigest()[:16]}.json"  # never reused
        storage.write_bytes(split_uri, text)
        result["split"] = {
            "uri": split_uri, "publicRows": len(split.public), "privateRows": len(split.private),
            "seed": competition.seed, "privateFraction": competition.private_fraction,
            **({"idColumn": spec.holdout.id_column} if spec.holdout.id_column else {}),
        }
    return result


def _split_is_current(status: dict[str, Any], spec: PlaygroundSpec) -> bool:
    snapshot = status.get("holdout") or {}
    if (snapshot.get("sourceFeatures"), snapshot.get("sourceLabels")) != (spec.holdout.features, spec.holdout.labels):
        return False
    split = status.get("split") or {}
    if spec.competition is None:
        return not split and status.get("holdoutRows") is not None
    return (split.get("seed"), split.get("privateFraction"), split.get("idColumn")) == (
        spec.competition.seed, spec.competition.private_fraction, spec.holdout.id_column)


def _source_digest(spec: PlaygroundSpec) -> str:
    """Runs in a worker thread: the content hash of what ``spec.holdout`` names now (as the snapshot's)."""
    from podium import storage

    with tempfile.TemporaryDirectory() as scratch:
        paths = [storage.download(uri, Path(scratch) / part / storage.parse(uri).name)
                 for part, uri in (("features", spec.holdout.features), ("labels", spec.holdout.labels))]
        return holdout_digest(paths)


def _source_fingerprints(spec: PlaygroundSpec) -> tuple[str, ...] | None:
    """Runs in a worker thread: what the source's metadata says (None where it says nothing, e.g. a URL)."""
    from podium import storage

    marks = tuple(storage.fingerprint(uri) for uri in (spec.holdout.features, spec.holdout.labels))
    return None if None in marks else tuple(str(mark) for mark in marks)


def holdout_digest(paths: list[Path]) -> str:
    """sha256 over the sha256 of each file (features, then labels): the snapshot's content address."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


async def reconcile_playground(ctl: Controller, playground: dict[str, Any]) -> PlaygroundOutcome:
    """Validate, check the holdout, split it, publish status. Returns what was decided."""
    meta = playground["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = dict(playground.get("status") or {})
    spec, _ = parse_spec(PlaygroundSpec, playground.get("spec") or {})
    holdout: dict[str, Any] = {}
    problem, problem_reason = None, ""
    if spec is not None and not _split_is_current(status, spec):
        prefix = ctl.config.private_prefix(namespace, name, meta["uid"])
        try:
            holdout = await asyncio.to_thread(_holdout_split, spec, prefix)
        except InvalidHoldout as error:
            problem, problem_reason = str(error), "InvalidHoldout"
        except (OSError, ValueError) as error:
            problem, problem_reason = str(error), "HoldoutUnavailable"
    now = utcnow()
    outcome = reconcile_playground_status(
        playground.get("spec") or {}, generation=meta.get("generation"), status=status, now=now,
        holdout_problem=problem, holdout_reason=problem_reason,
    )
    patch = {**outcome.status_patch, **holdout}
    if holdout:  # a new snapshot: its source is in sync by definition
        patch["conditions"] = holdout_sync({**status, **patch}, source_sha256=holdout["holdout"]["sha256"], now=now,
                                           generation=meta.get("generation")).conditions
    for event_type, reason, message in outcome.events:
        ctl.post_event(playground, event_type, reason, message)
    playground = await ctl.patch_status(k8s.PLAYGROUNDS, playground, patch)
    if outcome.ready:
        await refresh_leaderboard(ctl, namespace, name)
        if spec is not None:
            await ensure_profile(ctl, playground, spec)
    return outcome


async def check_holdout_source(ctl: Controller, playground: dict[str, Any]) -> None:
    """Compare a Ready Playground's holdout source with its snapshot; report a change (never use it)."""
    from podium.errors import PodiumError

    status = playground.get("status") or {}
    spec, _ = parse_spec(PlaygroundSpec, playground.get("spec") or {})
    if spec is None or not condition_is_true(playground) or not (status.get("holdout") or {}).get("sha256"):
        return
    uid = playground["metadata"]["uid"]
    sha: str | None
    problem = ""
    try:
        marks = await asyncio.to_thread(_source_fingerprints, spec)
        if marks is not None and ctl.holdout_fingerprints.get(uid) == marks:
            return  # not touched since its contents were last compared: no download
        sha = await asyncio.to_thread(_source_digest, spec)
        if marks is not None:
            ctl.holdout_fingerprints[uid] = marks
    except (OSError, PodiumError) as error:
        sha, problem = None, str(error)
        ctl.holdout_fingerprints.pop(uid, None)
    sync = holdout_sync(status, source_sha256=sha, now=utcnow(), generation=playground["metadata"].get("generation"),
                        problem=problem)
    for event_type, reason, message in sync.events:
        ctl.post_event(playground, event_type, reason, message)
    if sync.conditions != status.get("conditions"):
        await ctl.patch_status(k8s.PLAYGROUNDS, playground, {"conditions": sync.conditions})


async def delete_playground(ctl: Controller, playground: dict[str, Any]) -> int:
    """Remove what the operator and participants stored for a deleted Playground; returns how many objects.

    Its Submissions (and their Jobs) go by garbage collection, since the Playground owns them.
    """
    from podium import storage

    meta = playground["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    prefixes = [f"{ctl.config.private_prefix(namespace, name, uid)}/", ctl.config.results_prefix(namespace, name, uid),
                ctl.config.playground_uploads_prefix(namespace, name)]
    removed = 0
    for prefix in prefixes:
        removed += await asyncio.to_thread(storage.delete_prefix, prefix)
    await forget_playground(ctl, namespace, uid)
    ctl.holdout_fingerprints.pop(uid, None)
    return removed


async def waiting_submissions(ctl: Controller, namespace: str, playground: str) -> list[str]:
    return [
        s["metadata"]["name"] for s in await ctl.kube.list(k8s.SUBMISSIONS, namespace)
        if (s.get("spec") or {}).get("playground") == playground
        and (s.get("status") or {}).get("phase") in (None, "Pending")
    ]
