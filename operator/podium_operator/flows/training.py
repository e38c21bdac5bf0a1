"""Training flow: run a training Submission's Job, show its progress, record the artifact it produced."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from podium.api.meta import utcnow
from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium.training.wire import MAX_PROGRESS_BYTES, ProgressReport
from podium_operator import k8s
from podium_operator.controller import Controller
from podium_operator.flows.children import own_child, presigned_urls
from podium_operator.flows.records import put_record
from podium_operator.reconcile.records import SubmissionRecord
from podium_operator.reconcile.submission import failure_message, job_state
from podium_operator.reconcile.training_jobs import (
    TrainingPlan,
    object_access,
    progress_status,
    training_job,
    training_job_name,
)

logger = logging.getLogger(__name__)
MAX_HISTORY_BYTES = 4 << 20


@dataclass(frozen=True)
class TrainingOutcome:
    """``record`` set: trained, evaluate it; ``failure`` set: record that; neither: still training."""

    record: SubmissionRecord | None = None
    failure: str | None = None


def training_plan(ctl: Controller, submission: dict[str, Any], record: SubmissionRecord, spec: SubmissionSpec,
                  playground: dict[str, Any], pg: PlaygroundSpec) -> TrainingPlan:
    assert spec.training is not None
    data = spec.training.data or pg.training_data
    assert data is not None  # admission rejects a training Submission with no data
    meta = playground["metadata"]
    config = ctl.config
    return TrainingPlan(
        namespace=submission["metadata"]["namespace"], submission=submission, playground=meta["name"],
        task=pg.task, class_labels=tuple(pg.class_labels or ()), metric=pg.primary_metric, training=spec.training,
        features_uri=data.features, labels_uri=data.labels,
        prefix=config.training_prefix(submission["metadata"]["namespace"], meta["name"], meta["uid"], record.uid),
        image=config.trainer_image, gpu_pool=config.gpu_pool, node_selector=dict(config.gpu_node_selector),
        tolerations=tuple(config.gpu_tolerations), progress_seconds=config.training_progress_seconds,
    )


async def _read_progress(uri: str) -> ProgressReport | None:
    """The Job's last progress report, strictly read; None when there is none yet or it cannot be used."""
    from podium import storage
    from podium.errors import StorageError

    try:
        data = await asyncio.to_thread(storage.read_bytes, uri, limit=MAX_PROGRESS_BYTES)
        return ProgressReport.from_json(data)
    except (StorageError, ValueError) as error:
        logger.debug("no usable progress report at %s: %s", uri, error)
        return None


async def _show_progress(ctl: Controller, submission: dict[str, Any], plan: TrainingPlan) -> dict[str, Any] | None:
    """Copy the progress report into ``status.training`` when it says something new (one write per change);
    returns what status.training now shows (None: no report yet)."""
    report = await _read_progress(plan.uri("progress.json"))
    if report is None:
        return None
    view = progress_status(report, now=utcnow())
    current = dict((submission.get("status") or {}).get("training") or {})
    if {k: v for k, v in current.items() if k != "updatedAt"} == {k: v for k, v in view.items() if k != "updatedAt"}:
        return current
    await ctl.patch_status(k8s.SUBMISSIONS, submission, {
        "training": {**{k: None for k in current if k not in view}, **view}})
    return view


async def _found_config(plan: TrainingPlan, record: SubmissionRecord) -> dict[str, Any] | None:
    """What a recommendation should propose: for tpe-search the best configuration it found, as a one-point
    search space (one trial); for the others the spec's own."""
    from podium import storage
    from podium.evaluation.wire import strict_json

    if plan.training.algorithm != "tpe-search":
        return record.training
    try:
        history = strict_json(await asyncio.to_thread(storage.read_bytes, plan.uri("history.json"),
                                                      limit=MAX_HISTORY_BYTES), limit=MAX_HISTORY_BYTES)
        best = history["best"]
        space = {"estimators": {str(best["estimator"]): dict(best.get("params") or {})}}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        logger.info("no best configuration in %s: %s", plan.uri("history.json"), error)
        return record.training
    settings = {**plan.training.hyperparameters, "space": space, "trials": 1}
    return {"algorithm": "tpe-search", "hyperparameters": settings}


async def advance_training(ctl: Controller, submission: dict[str, Any], record: SubmissionRecord,
                           spec: SubmissionSpec, playground: dict[str, Any], pg: PlaygroundSpec) -> TrainingOutcome:
    """Create the training Job, follow it, and once it succeeded record the artifact as the one to evaluate."""
    namespace = submission["metadata"]["namespace"]
    plan = training_plan(ctl, submission, record, spec, playground, pg)
    name = training_job_name(plan.name)
    job = await own_child(ctl, k8s.JOBS, namespace, name, record.uid)
    state = job_state(job)
    if state == "absent":
        urls = await presigned_urls(object_access(plan), deadline_seconds=spec.training.timeout_seconds)  # type: ignore[union-attr]
        await ctl.kube.create_if_absent(k8s.JOBS, namespace, training_job(dataclasses.replace(plan, urls=urls)))
        where = f"{plan.gpus} GPU" if plan.gpus else "CPU" + ("" if ctl.config.gpu_pool else " (no GPU pool)")
        ctl.post_event(submission, "Normal", "Training", f"training Job {name} started ({where})")
        await ctl.patch_status(k8s.SUBMISSIONS, submission, {"jobs": {"training": name}})
        return TrainingOutcome()
    report = await _show_progress(ctl, submission, plan)
    if state == "running":
        return TrainingOutcome()
    if state == "failed":
        assert job is not None
        pods = await ctl.kube.list(k8s.PODS, namespace, labels=f"job-name={name}")
        return TrainingOutcome(failure=failure_message("train", job, pods[-1] if pods else None))
    from podium import storage

    artifact = plan.uri("model.tar.gz")
    if not await asyncio.to_thread(storage.exists, artifact):
        return TrainingOutcome(failure="The training Job succeeded but left no model artifact.")
    trained = await put_record(ctl, namespace, record.model_copy(update={
        "phase": "Evaluating", "model_uri": artifact, "training": await _found_config(plan, record), "progress": report,
        "message": f"version {record.version} was trained; evaluating it"}))
    ctl.post_event(submission, "Normal", "Trained", f"training Job {name} produced a model; evaluating it")
    return TrainingOutcome(record=trained)
