"""Submission flow: drive one Submission from Pending to Evaluated/Failed/Rejected (I/O around reconcile/)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from podium.api.meta import condition_is_true, format_time, parse_time, utcnow
from podium.api.playground import PlaygroundSpec
from podium.api.submission import TERMINAL_PHASES, SubmissionSpec
from podium.evaluation.wire import MAX_RESULT_BYTES, PublicResult
from podium_operator import k8s, metrics
from podium_operator.controller import Controller
from podium_operator.flows.leaderboard import refresh_leaderboard
from podium_operator.reconcile.conditions import set_condition
from podium_operator.reconcile.evaluation_jobs import (
    EvaluationPlan,
    evaluation_job,
    evaluation_volume,
    job_name,
    sandbox_network_policy,
    volume_name,
)
from podium_operator.reconcile.submission import (
    admission_problem,
    bounded_metadata,
    failure_message,
    next_action,
    submitted_today,
)
from podium_operator.reconcile.validation import parse_spec
from podium_operator.settings import SUBMITTER_ANNOTATION

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
        if other is not None and (other.get("status") or {}).get("version") is None:
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


def _status_base(submission: dict[str, Any]) -> dict[str, Any]:
    return dict(submission.get("status") or {})


async def _finish(
    ctl: Controller, submission: dict[str, Any], *, phase: str, reason: str, message: str, extra: dict | None = None
) -> None:
    status = _status_base(submission)
    now = utcnow()
    conditions = set_condition(
        status.get("conditions"), type_="Ready", status=phase == "Evaluated", reason=reason, message=message,
        now=now, generation=submission["metadata"].get("generation"),
    )
    patch: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "observedGeneration": submission["metadata"].get("generation"),
        "message": message,
        **(extra or {}),
    }
    timings = dict(status.get("timings") or {})
    timings["evaluatedAt"] = format_time(now)
    if timings.get("submittedAt"):
        started = parse_time(timings["submittedAt"])
        timings["durationSeconds"] = round((now - started).total_seconds(), 3)
        metrics.EVALUATION_SECONDS.labels(
            submission["metadata"]["namespace"], submission["spec"].get("playground", ""), phase
        ).observe(timings["durationSeconds"])
    patch["timings"] = timings
    await ctl.patch_status(k8s.SUBMISSIONS, submission, patch)
    metrics.SUBMISSIONS.labels(submission["metadata"]["namespace"], submission["spec"].get("playground", ""), phase).inc()
    ctl.post_event(submission, "Normal" if phase == "Evaluated" else "Warning", reason, message)


def _plan(
    ctl: Controller, submission: dict[str, Any], spec: SubmissionSpec, playground: dict[str, Any], pg: PlaygroundSpec
) -> EvaluationPlan:
    namespace = submission["metadata"]["namespace"]
    name = submission["metadata"]["name"]
    pg_name = playground["metadata"]["name"]
    split = (playground.get("status") or {}).get("split") or {}
    return EvaluationPlan(
        namespace=namespace,
        submission=submission,
        playground=pg_name,
        version=int(submission["status"]["version"]),
        task=pg.task,
        class_labels=tuple(pg.class_labels or ()),
        features_uri=pg.holdout.features,
        labels_uri=pg.holdout.labels,
        split_uri=split.get("uri") or None,
        results_uri=ctl.config.results_uri(namespace, pg_name, name),
        private_uri=ctl.config.private_scores_uri(namespace, pg_name, name),
        model_uri=spec.model.uri if spec.model else None,
        preprocessor_uri=spec.model.preprocessor_uri if spec.model else None,
        predictions_uri=spec.predictions.uri if spec.predictions else None,
        image=pg.evaluation.image or ctl.config.evaluator_image,
        cpu=pg.evaluation.resources.cpu,
        memory=pg.evaluation.resources.memory,
        timeout_seconds=pg.evaluation.timeout_seconds,
        object_store_secret=ctl.config.object_store_secret,
        object_store_env=ctl.config.object_store_env,
    )


async def _admit(ctl: Controller, submission: dict[str, Any], spec: SubmissionSpec, playground: dict[str, Any],
                 pg: PlaygroundSpec) -> dict[str, Any] | None:
    """Reject, or assign a version and move to Evaluating. Returns the updated Submission (None if rejected)."""
    namespace = submission["metadata"]["namespace"]
    pg_name = playground["metadata"]["name"]
    submitter = (submission["metadata"].get("annotations") or {}).get(SUBMITTER_ANNOTATION) or "anonymous"
    now = utcnow()
    async with ctl.playground_locks[(namespace, pg_name)]:
        today = 0
        if spec.track == "competition":  # only competitions have quotas
            same_namespace = await ctl.kube.list(k8s.SUBMISSIONS, namespace)
            today = submitted_today(same_namespace, submitter=submitter, playground=pg_name, now=now)
        rejection = admission_problem(
            spec, pg, playground_closed=bool((playground.get("status") or {}).get("competitionClosed")),
            submitter=submitter, submitted_today=today, now=now,
        )
        if rejection is not None:
            await _finish(ctl, submission, phase="Rejected", reason=rejection.reason, message=rejection.message,
                          extra={"submitter": submitter})
            return None
        fresh_playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, pg_name) or playground
        version = await _assign_version(ctl, fresh_playground, submission["metadata"]["name"])
        status = {
            "phase": "Evaluating",
            "version": version,
            "submitter": submitter,
            "verified": spec.model is not None,
            "timings": {"submittedAt": format_time(now), "startedAt": format_time(now)},
            "observedGeneration": submission["metadata"].get("generation"),
            "conditions": set_condition(None, type_="Ready", status=False, reason="Evaluating",
                                        message=f"version {version} is being evaluated", now=now,
                                        generation=submission["metadata"].get("generation")),
        }
        updated = await ctl.patch_status(k8s.SUBMISSIONS, submission, status)
        ctl.recorded_versions.add((namespace, submission["metadata"]["name"]))
    metrics.SUBMISSIONS.labels(namespace, pg_name, "Evaluating").inc()
    ctl.post_event(submission, "Normal", "Accepted", f"version {version} of playground {pg_name}")
    return updated


async def _ensure_sandbox_policy(ctl: Controller, namespace: str) -> None:
    if namespace not in ctl.policies_ensured:
        await ctl.kube.create_if_absent(k8s.NETWORK_POLICIES, namespace, sandbox_network_policy(namespace))
        ctl.policies_ensured.add(namespace)


async def _read_result(uri: str) -> PublicResult:
    """The score step's public result file; a PodiumError saying what is wrong when it is missing or bad."""
    from podium import storage

    return PublicResult.from_json(
        await asyncio.to_thread(storage.read_bytes, uri, limit=MAX_RESULT_BYTES), source=uri)


async def _advance(ctl: Controller, submission: dict[str, Any], spec: SubmissionSpec, playground: dict[str, Any],
                   pg: PlaygroundSpec) -> bool:
    """Create the next Job, or record the outcome. True when the submission reached a final phase."""
    namespace = submission["metadata"]["namespace"]
    plan = _plan(ctl, submission, spec, playground, pg)
    jobs = {step: await ctl.kube.get(k8s.JOBS, namespace, job_name(plan.name, step)) for step in plan.steps()}
    action = next_action(plan.steps(), jobs)
    if action.kind == "create":
        assert action.step is not None
        if action.step == "stage":
            await _ensure_sandbox_policy(ctl, namespace)
            await ctl.kube.create_if_absent(k8s.PVCS, namespace, evaluation_volume(plan))
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
    result = await _read_result(plan.results_uri)
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
    """Level-based: look at the Submission and its Jobs, take the next step. Returns what happened."""
    async with ctl.submission_locks[(namespace, name)]:
        submission = await ctl.kube.get(k8s.SUBMISSIONS, namespace, name)
        if submission is None or (submission.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return "done"
        if submission["metadata"].get("deletionTimestamp"):
            return "deleting"
        spec, problem = parse_spec(SubmissionSpec, submission.get("spec") or {})
        if spec is None:
            await _finish(ctl, submission, phase="Rejected", reason="InvalidSpec", message=problem)
            return "rejected"
        playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, spec.playground)
        pg, _ = parse_spec(PlaygroundSpec, (playground or {}).get("spec") or {})
        if playground is None or pg is None or not condition_is_true(playground):
            waiting = f"waiting for playground {spec.playground} to exist and be Ready"
            if (submission.get("status") or {}).get("message") != waiting:
                await ctl.patch_status(k8s.SUBMISSIONS, submission, {"phase": "Pending", "message": waiting})
            return "waiting"
        if (submission.get("status") or {}).get("version") is None:
            admitted = await _admit(ctl, submission, spec, playground, pg)
            if admitted is None:
                return "rejected"
            submission = admitted
        finished = await _advance(ctl, submission, spec, playground, pg)
        ctl.track((namespace, name), not finished)
    if finished:
        await refresh_leaderboard(ctl, namespace, spec.playground)
        return "finished"
    return "progressing"
