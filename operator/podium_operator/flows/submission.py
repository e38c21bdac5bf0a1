"""Submission flow: drive one Submission from Pending to Evaluated/Failed/Rejected (I/O around reconcile/)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from podium.api.meta import condition_is_true, format_time, utcnow
from podium.api.playground import PlaygroundSpec
from podium.api.submission import SUBMITTER_ANNOTATION, SubmissionSpec
from podium.evaluation.wire import MAX_RESULT_BYTES, InvalidResult, PublicResult
from podium.uri import ANONYMOUS
from podium_operator import k8s, metrics
from podium_operator.controller import Controller
from podium_operator.flows.children import own_child, presigned_urls
from podium_operator.flows.leaderboard import refresh_leaderboard
from podium_operator.flows.records import get_record, playground_records, put_record
from podium_operator.flows.training import advance_training
from podium_operator.reconcile.conditions import set_condition
from podium_operator.reconcile.evaluation_jobs import (
    EvaluationPlan,
    Step,
    evaluation_job,
    evaluation_volume,
    job_name,
    object_access,
    sandbox_network_policy,
    volume_name,
)
from podium_operator.reconcile.names import owner_reference
from podium_operator.reconcile.records import RecordPhase, SubmissionRecord, status_sync_patch
from podium_operator.reconcile.submission import (
    admission_problem,
    bounded_metadata,
    failure_message,
    next_action,
    reference_problem,
    submitted_today,
)
from podium_operator.reconcile.validation import parse_spec

logger = logging.getLogger(__name__)


async def _still_unrecorded(ctl: Controller, namespace: str, pending: dict[str, int], current: str) -> dict[str, int]:
    """The pending assignments that may still be missing from their Submission (kept so none is skipped)."""
    kept: dict[str, int] = {}
    for submission, version in pending.items():
        if submission == current:
            continue
        if (namespace, submission) in ctl.recorded_versions:
            ctl.recorded_versions.discard((namespace, submission))  # dropped from the map: forget it too
            continue
        other = await ctl.kube.get(k8s.SUBMISSIONS, namespace, submission)  # only after a restart
        if other is None:
            continue
        record = await get_record(ctl, namespace, other["metadata"]["uid"])
        if record is None or record.version != int(version):
            kept[submission] = int(version)
    return kept


async def _assign_version(ctl: Controller, playground: dict[str, Any], submission: str) -> int:
    """Take the next version from the Playground's counter with optimistic concurrency (409 → re-read).

    Every version handed out stays in ``pendingVersions`` until its Submission has recorded it, so an
    operator killed in between re-uses it rather than leaving a gap, whichever Submission it admits first.
    """
    namespace, name = playground["metadata"]["namespace"], playground["metadata"]["name"]
    current = playground
    for _ in range(50):
        status = dict(current.get("status") or {})
        pending = {str(k): int(v) for k, v in (status.get("pendingVersions") or {}).items()}
        if submission in pending:  # assigned before a crash, not yet recorded
            return pending[submission]
        version = int(status.get("nextVersion") or 1)
        kept = await _still_unrecorded(ctl, namespace, pending, submission)
        status.update(nextVersion=version + 1, pendingVersions={**kept, submission: version})
        body = {**current, "status": status}
        try:
            await ctl.kube.replace(k8s.PLAYGROUNDS, namespace, name, body, subresource="status")
            return version
        except k8s.Conflict:
            fresh = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, name)
            if fresh is None:
                raise LookupError(f"playground {name} was deleted") from None
            current = fresh
    raise RuntimeError(f"could not assign a version in playground {name}: too many concurrent writers")


def _new_record(submission: dict[str, Any], playground: dict[str, Any] | None = None) -> SubmissionRecord:
    """The record of a Submission the operator has not decided on yet (its spec as written, maybe invalid)."""
    meta, spec = submission["metadata"], submission.get("spec") or {}
    return SubmissionRecord(
        submission=meta["name"], uid=meta["uid"], playground=str(spec.get("playground") or ""),
        playground_uid=playground["metadata"]["uid"] if playground else "",
        track=str(spec.get("track") or "experiment"), phase="Evaluating",
        submitter=(meta.get("annotations") or {}).get(SUBMITTER_ANNOTATION) or ANONYMOUS,
    )


async def _show(ctl: Controller, submission: dict[str, Any], record: SubmissionRecord,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the status from the record (plus ``extra``); a forged status is overwritten, never believed."""
    patch = {**status_sync_patch(submission.get("status"), record), **(extra or {})}
    return await ctl.patch_status(k8s.SUBMISSIONS, submission, patch) if patch else submission


async def _finish(
    ctl: Controller, submission: dict[str, Any], *, phase: RecordPhase, reason: str, message: str,
    extra: dict | None = None, playground: dict[str, Any] | None = None,
) -> None:
    """Record the outcome first (the authority), then show it in the status and post an Event."""
    meta = submission["metadata"]
    namespace = meta["namespace"]
    now = utcnow()
    outcome = {k: v for k, v in (extra or {}).items() if k in ("metrics", "score", "metadata", "framework")}
    record = await get_record(ctl, namespace, meta["uid"]) or _new_record(submission, playground)
    record = await put_record(ctl, namespace, record.finished(phase=phase, reason=reason, message=message, now=now,
                                                              **outcome))
    conditions = set_condition(
        (submission.get("status") or {}).get("conditions"), type_="Ready", status=phase == "Evaluated",
        reason=reason, message=message, now=now, generation=meta.get("generation"),
    )
    await _show(ctl, submission, record, {"conditions": conditions, "observedGeneration": meta.get("generation")})
    if record.duration_seconds is not None:
        metrics.EVALUATION_SECONDS.labels(namespace, record.playground, phase).observe(record.duration_seconds)
    metrics.SUBMISSIONS.labels(namespace, record.playground, phase).inc()
    ctl.post_event(submission, "Normal" if phase == "Evaluated" else "Warning", reason, message)


def _plan(
    ctl: Controller, submission: dict[str, Any], record: SubmissionRecord, spec: SubmissionSpec,
    playground: dict[str, Any], pg: PlaygroundSpec,
) -> EvaluationPlan:
    namespace = submission["metadata"]["namespace"]
    pg_name, pg_uid = playground["metadata"]["name"], playground["metadata"]["uid"]
    split = (playground.get("status") or {}).get("split") or {}
    snapshot = (playground.get("status") or {}).get("holdout") or {}
    return EvaluationPlan(
        namespace=namespace,
        submission=submission,
        playground=pg_name,
        version=int(record.version or 0),
        task=pg.task,
        class_labels=tuple(pg.class_labels or ()),
        features_uri=snapshot.get("features") or pg.holdout.features,  # the operator's copy (see flows.playground)
        labels_uri=snapshot.get("labels") or pg.holdout.labels,
        split_uri=split.get("uri") or None,
        results_uri=ctl.config.results_uri(namespace, pg_name, pg_uid, record.uid),
        private_uri=ctl.config.private_scores_uri(namespace, pg_name, pg_uid, record.uid),
        model_uri=record.model_uri or (spec.model.uri if spec.model else None),
        preprocessor_uri=spec.model.preprocessor_uri if spec.model else None,
        predictions_uri=spec.predictions.uri if spec.predictions else None,
        image=pg.evaluation.image or ctl.config.evaluator_image,
        cpu=pg.evaluation.resources.cpu,
        memory=pg.evaluation.resources.memory,
        timeout_seconds=pg.evaluation.timeout_seconds,
    )


async def _admit(ctl: Controller, submission: dict[str, Any], spec: SubmissionSpec, playground: dict[str, Any],
                 pg: PlaygroundSpec) -> SubmissionRecord | None:
    """Reject, or assign a version and move to Evaluating. Returns the new record (None if rejected)."""
    namespace = submission["metadata"]["namespace"]
    pg_name = playground["metadata"]["name"]
    record = _new_record(submission, playground)
    now = utcnow()
    async with ctl.playground_locks[(namespace, pg_name)]:
        today = 0
        if spec.track == "competition":  # only competitions have quotas, counted from the records
            today = submitted_today(await playground_records(ctl, namespace, pg_name, record.playground_uid),
                                    submitter=record.submitter, now=now)
        rejection = reference_problem(spec, ctl.config.upload_prefix(namespace, pg_name, record.submitter)) or (
            admission_problem(
                spec, pg, playground_closed=bool((playground.get("status") or {}).get("competitionClosed")),
                submitter=record.submitter, submitted_today=today, now=now,
            ))
        if rejection is not None:
            await _finish(ctl, submission, phase="Rejected", reason=rejection.reason, message=rejection.message,
                          playground=playground)
            return None
        fresh_playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, pg_name) or playground
        version = await _assign_version(ctl, fresh_playground, submission["metadata"]["name"])
        await _owned_by(ctl, submission, playground)
        training = spec.training is not None
        record = await put_record(ctl, namespace, record.model_copy(update={
            "playground": pg_name, "version": version, "verified": spec.predictions is None,
            "custom_metadata": dict(spec.metadata), "phase": "Training" if training else "Evaluating",
            "model_uri": spec.model.uri if spec.model else None, "submitted_at": format_time(now),
            "training": {"algorithm": spec.training.algorithm, "hyperparameters": spec.training.hyperparameters}
            if spec.training else None,
            "message": f"version {version} is {'training' if training else 'being evaluated'}"}))
        generation = submission["metadata"].get("generation")
        await _show(ctl, submission, record, {
            "observedGeneration": generation,
            "conditions": set_condition(None, type_="Ready", status=False, reason=record.phase,
                                        message=record.message, now=now, generation=generation),
        })
        ctl.recorded_versions.add((namespace, submission["metadata"]["name"]))
    metrics.SUBMISSIONS.labels(namespace, pg_name, record.phase).inc()
    ctl.post_event(submission, "Normal", "Accepted", f"version {version} of playground {pg_name}")
    return record


async def _owned_by(ctl: Controller, submission: dict[str, Any], playground: dict[str, Any]) -> None:
    """Make the Playground the Submission's owner, so deleting the Playground garbage-collects it."""
    meta = submission["metadata"]
    owner = {**owner_reference(playground), "blockOwnerDeletion": False}  # the Playground's finalizer waits for nothing
    if any(ref.get("uid") == owner["uid"] for ref in meta.get("ownerReferences") or []):
        return
    await ctl.kube.patch(k8s.SUBMISSIONS, meta["namespace"], meta["name"],
                         {"metadata": {"ownerReferences": [*(meta.get("ownerReferences") or []), owner]}})


async def _ensure_sandbox_policy(ctl: Controller, namespace: str) -> None:
    if namespace not in ctl.policies_ensured:
        await ctl.kube.create_if_absent(k8s.NETWORK_POLICIES, namespace, sandbox_network_policy(namespace))
        ctl.policies_ensured.add(namespace)


async def _read_result(uri: str) -> PublicResult:
    """The score step's public result file, strictly read; :class:`InvalidResult` when it is bad for good.

    A file too large or not a valid result (not JSON, a non-finite number, the wrong shape) raises
    InvalidResult: reading it again cannot help. Errors that may pass (the object store unreachable,
    credentials, the object not there yet) stay a StorageError, so the reconcile is retried.
    """
    from podium import storage
    from podium.errors import NotFound, StorageError

    try:
        data = await asyncio.to_thread(storage.read_bytes, uri, limit=MAX_RESULT_BYTES)
    except StorageError as error:
        if isinstance(error, NotFound) or error.field != "uri":
            raise
        raise InvalidResult(error.problem, field=None, hint=error.hint) from None  # e.g. over the limit
    return PublicResult.from_json(data, source=uri)


async def _presigned(plan: EvaluationPlan, step: Step) -> EvaluationPlan:
    """The plan with a short-lived presigned URL for each object ``step`` reads or writes (its only access)."""
    urls = await presigned_urls(object_access(plan, step), deadline_seconds=plan.timeout_seconds)
    return dataclasses.replace(plan, urls=urls)


async def _advance(ctl: Controller, submission: dict[str, Any], record: SubmissionRecord, spec: SubmissionSpec,
                   playground: dict[str, Any], pg: PlaygroundSpec) -> bool:
    """Create the next Job, or record the outcome. True when the submission reached a final phase."""
    namespace = submission["metadata"]["namespace"]
    if record.phase == "Training":
        outcome = await advance_training(ctl, submission, record, spec, playground, pg)
        if outcome.failure is not None:
            await _finish(ctl, submission, phase="Failed", reason="TrainingFailed", message=outcome.failure)
            return True
        if outcome.record is None:
            return False
        record = outcome.record
        submission = await _show(ctl, submission, record, {"conditions": set_condition(
            (submission.get("status") or {}).get("conditions"), type_="Ready", status=False, reason="Evaluating",
            message=record.message, now=utcnow(), generation=submission["metadata"].get("generation"))})
    plan = _plan(ctl, submission, record, spec, playground, pg)
    jobs = {step: await own_child(ctl, k8s.JOBS, namespace, job_name(plan.name, step), record.uid)
            for step in plan.steps()}
    action = next_action(plan.steps(), jobs)
    if action.kind == "create":
        assert action.step is not None
        if action.step == "stage":
            await _ensure_sandbox_policy(ctl, namespace)
            await own_child(ctl, k8s.PVCS, namespace, volume_name(plan.name), record.uid)
            await ctl.kube.create_if_absent(k8s.PVCS, namespace, evaluation_volume(plan))
        plan = await _presigned(plan, action.step)
        await ctl.kube.create_if_absent(k8s.JOBS, namespace, evaluation_job(plan, action.step))
        await ctl.patch_status(k8s.SUBMISSIONS, submission, {"jobs": {"evaluation": job_name(plan.name, action.step)}})
        return False
    if action.kind == "wait":
        return False
    if "stage" in plan.steps():  # the Jobs are over: release the staged model and features
        await ctl.kube.delete(k8s.PVCS, namespace, volume_name(plan.name))
    if action.kind == "failed":
        assert action.step is not None
        job = jobs[action.step] or {}
        pods = await ctl.kube.list(k8s.PODS, namespace, labels=f"job-name={job['metadata']['name']}")
        message = failure_message(action.step, job, pods[-1] if pods else None)
        await _finish(ctl, submission, phase="Failed", reason="EvaluationFailed", message=message)
        return True
    try:
        result = await _read_result(plan.results_uri)
    except InvalidResult as error:  # retrying cannot help: fail once, saying why
        await _finish(ctl, submission, phase="Failed", reason="InvalidResult",
                      message=f"The score step's result could not be used: {error}")
        return True
    public = result.public
    metadata = bounded_metadata(result.metadata)
    score = public.get(pg.primary_metric)
    await _finish(
        ctl, submission, phase="Evaluated", reason="Scored",
        message=f"{pg.primary_metric} = {score:.6g} on the public split" if score is not None else "scored",
        extra={"metrics": public, "score": score, "metadata": metadata,
               "framework": metadata.get("framework") or ("predictions" if spec.predictions else None)},
    )
    return True


async def reconcile_submission(ctl: Controller, namespace: str, name: str) -> str:
    """Level-based: look at the Submission, its record and its Jobs, take the next step. Returns what happened."""
    async with ctl.submission_locks[(namespace, name)]:
        submission = await ctl.kube.get(k8s.SUBMISSIONS, namespace, name)
        if submission is None:
            return "done"
        if submission["metadata"].get("deletionTimestamp"):
            return "deleting"
        record = await get_record(ctl, namespace, submission["metadata"]["uid"])
        if record is not None and record.terminal:
            await _show(ctl, submission, record)  # decided: only a status that disagrees is rewritten
            return "done"
        spec, problem = parse_spec(SubmissionSpec, submission.get("spec") or {})
        if spec is None:
            await _finish(ctl, submission, phase="Rejected", reason="InvalidSpec", message=problem)
            return "rejected"
        pg_name = record.playground if record is not None else spec.playground  # admitted: it stays there
        playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, pg_name)
        pg, _ = parse_spec(PlaygroundSpec, (playground or {}).get("spec") or {})
        if playground is None or pg is None or not condition_is_true(playground):
            waiting = f"waiting for playground {pg_name} to exist and be Ready"
            if (submission.get("status") or {}).get("message") != waiting:
                await ctl.patch_status(k8s.SUBMISSIONS, submission, {"phase": "Pending", "message": waiting})
            return "waiting"
        if record is None:
            record = await _admit(ctl, submission, spec, playground, pg)
            if record is None:
                return "rejected"
        finished = await _advance(ctl, submission, record, spec, playground, pg)
        ctl.track((namespace, name), not finished)
    if finished:
        await refresh_leaderboard(ctl, namespace, pg_name)
        return "finished"
    return "progressing"
