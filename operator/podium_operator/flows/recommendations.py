"""Recommendations flow: profile each Playground's training data (a Job), then propose to every Playground
the configurations that ranked best on the playgrounds most like it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from podium.api.meta import format_time, utcnow
from podium.api.playground import PlaygroundSpec
from podium_operator import k8s
from podium_operator.controller import Controller
from podium_operator.flows.children import presigned_urls
from podium_operator.flows.records import playground_records
from podium_operator.reconcile.recommendations import (
    MAX_METAFEATURES_BYTES,
    PROFILE_TIMEOUT_SECONDS,
    Candidate,
    data_source,
    profile_job,
    profile_job_name,
    read_metafeatures,
    recommendations,
)
from podium_operator.reconcile.submission import failure_message, job_state
from podium_operator.reconcile.validation import parse_spec

logger = logging.getLogger(__name__)
MAX_PLAYGROUNDS = 200  # compared per namespace


def _shown(playground: dict[str, Any]) -> dict[str, Any]:
    """``status.metaFeatures`` as a dict whatever a status writer put there (it only says what to look at)."""
    shown = (playground.get("status") or {}).get("metaFeatures")
    return shown if isinstance(shown, dict) else {}


def _metafeatures_uri(ctl: Controller, playground: dict[str, Any], source: str) -> str:
    meta = playground["metadata"]
    return ctl.config.metafeatures_uri(meta["namespace"], meta["name"], meta["uid"], source)


async def _read(uri: str) -> dict[str, float] | None:
    from podium import storage

    try:
        return read_metafeatures(await asyncio.to_thread(storage.read_bytes, uri, limit=MAX_METAFEATURES_BYTES))
    except (OSError, ValueError) as error:  # missing, too large, malformed (a PodiumError is a ValueError)
        logger.debug("no meta-features at %s: %s", uri, error)
        return None


async def ensure_profile(ctl: Controller, playground: dict[str, Any], spec: PlaygroundSpec) -> None:
    """Start the profile Job of the current training data, or record what it found once it is done."""
    source = data_source(spec)
    if source is None or _shown(playground).get("source") == source:
        return
    assert spec.training_data is not None
    meta = playground["metadata"]
    namespace, name = meta["namespace"], profile_job_name(meta["name"], source)
    out = _metafeatures_uri(ctl, playground, source)
    job = await ctl.kube.get(k8s.JOBS, namespace, name)
    state = job_state(job)
    if state == "absent":
        urls = dict(await presigned_urls([("GET", spec.training_data.features), ("GET", spec.training_data.labels),
                                          ("PUT", out)], deadline_seconds=PROFILE_TIMEOUT_SECONDS))
        await ctl.kube.create_if_absent(k8s.JOBS, namespace, profile_job(
            playground, task=spec.task, features_url=urls[f"GET {spec.training_data.features}"],
            labels_url=urls[f"GET {spec.training_data.labels}"], out_url=urls[f"PUT {out}"],
            image=ctl.config.trainer_image, source=source))
        return
    if state == "running":
        return
    if state == "failed":
        assert job is not None
        pods = await ctl.kube.list(k8s.PODS, namespace, labels=f"job-name={name}")
        message = failure_message("train", job, pods[-1] if pods else None).replace("training the model",
                                                                                  "profiling the training data")
        if _shown(playground).get("message") != message:
            await ctl.patch_status(k8s.PLAYGROUNDS, playground, {"metaFeatures": {"message": message, "count": 0}})
        return
    values = await _read(out)
    if values is None:
        return
    await ctl.patch_status(k8s.PLAYGROUNDS, playground, {"metaFeatures": {
        "count": len(values), "computedAt": format_time(utcnow()), "source": source, "message": None}})
    ctl.post_event(playground, "Normal", "Profiled", f"{len(values)} meta-features of the training data")
    await refresh_recommendations(ctl, namespace)


async def _candidate(ctl: Controller, playground: dict[str, Any]) -> Candidate | None:
    spec, _ = parse_spec(PlaygroundSpec, playground.get("spec") or {})
    source = data_source(spec) if spec is not None else None
    if spec is None or source is None or _shown(playground).get("source") != source:
        return None
    values = await _read(_metafeatures_uri(ctl, playground, source))
    if not values:
        return None
    meta = playground["metadata"]
    records = await playground_records(ctl, meta["namespace"], meta["name"], meta["uid"])
    return Candidate(name=meta["name"], spec=spec, metafeatures=values, records=records)


async def refresh_recommendations(ctl: Controller, namespace: str) -> None:
    """Recompute every profiled Playground's recommendations in ``namespace`` (one write per change)."""
    playgrounds = (await ctl.kube.list(k8s.PLAYGROUNDS, namespace))[:MAX_PLAYGROUNDS]
    profiled = [p for p in playgrounds if _shown(p).get("source")]
    if len(profiled) < 2:
        return
    candidates = {c.name: (c, p) for p in profiled if (c := await _candidate(ctl, p)) is not None}
    everyone = [c for c, _ in candidates.values()]
    for candidate, playground in candidates.values():
        try:
            rows = recommendations(candidate, everyone)
        except ValueError as error:  # e.g. no meta-feature in common (another podium version profiled it)
            logger.info("no recommendations for %s/%s: %s", namespace, candidate.name, error)
            rows = []
        if rows != (playground.get("status") or {}).get("recommendations", []):
            await ctl.patch_status(k8s.PLAYGROUNDS, playground, {"recommendations": rows})


async def profile_job_changed(ctl: Controller, namespace: str, playground_name: str) -> None:
    playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, playground_name)
    spec, _ = parse_spec(PlaygroundSpec, (playground or {}).get("spec") or {})
    if playground is not None and spec is not None and not playground["metadata"].get("deletionTimestamp"):
        await ensure_profile(ctl, playground, spec)
