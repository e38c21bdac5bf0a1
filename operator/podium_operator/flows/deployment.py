"""ModelDeployment flow: resolve the target, measure the candidate, decide, apply the InferenceService, report.

Called on every spec change, on every change of the InferenceService's status, and on a timer (steps are
judged on the first tick after their interval). Each run re-reads the ModelDeployment under its lock, so a
timer and a watch event never decide from the same stale status twice.
"""

from __future__ import annotations

import logging
from typing import Any

from podium.api.deployment import CHANGED_BY_ANNOTATION, ModelDeploymentSpec, ModelDeploymentStatus, TargetRef
from podium.api.meta import utcnow
from podium_operator import k8s, metrics
from podium_operator.controller import Controller
from podium_operator.flows.records import namespace_records
from podium_operator.promql import MetricsUnavailable
from podium_operator.reconcile import inference_service as isvc
from podium_operator.reconcile import rollout
from podium_operator.reconcile.analysis import Judgement, Subject, judge
from podium_operator.reconcile.conditions import set_condition
from podium_operator.reconcile.deployment import Refusal, resolve
from podium_operator.reconcile.validation import parse_spec

logger = logging.getLogger(__name__)
# Status fields a decision may clear: a merge patch removes them only when they are sent as null.
CLEARABLE = ("stable", "canary", "canaryPercent", "rollout", "analysis", "shadow", "rejected", "url", "message")


async def reconcile_deployment(ctl: Controller, namespace: str, name: str) -> None:
    async with ctl.deployment_locks[(namespace, name)]:
        mdep = await ctl.kube.get(k8s.MODEL_DEPLOYMENTS, namespace, name)
        if mdep is None or mdep["metadata"].get("deletionTimestamp"):
            return
        await _reconcile(ctl, mdep)


async def _reconcile(ctl: Controller, mdep: dict[str, Any]) -> None:
    meta = mdep["metadata"]
    namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
    now = utcnow()
    status = ModelDeploymentStatus.model_validate(mdep.get("status") or {})
    spec, error = parse_spec(ModelDeploymentSpec, mdep.get("spec") or {})
    if spec is None:
        return await _refuse(ctl, mdep, status, Refusal("InvalidSpec", error))
    playground = await ctl.kube.get(k8s.PLAYGROUNDS, namespace, spec.playground)
    records = (await namespace_records(ctl, namespace)).values()
    submissions = {s["metadata"]["name"]: s for s in await ctl.kube.list(k8s.SUBMISSIONS, namespace)}
    target = resolve(TargetRef(submission=spec.submission, version=spec.version), field="spec",
                     playground=playground, records=records, submissions=submissions)
    if isinstance(target, Refusal):
        return await _refuse(ctl, mdep, status, target)
    shadow: isvc.Artifact | None = None
    if spec.shadow is not None:
        found = resolve(spec.shadow, field="spec.shadow", playground=playground, records=records,
                        submissions=submissions)
        if isinstance(found, Refusal):
            return await _refuse(ctl, mdep, status, found)
        shadow = found
    runtime = isvc.Runtime(mode=spec.runtime.deployment_mode, replicas=spec.runtime.replicas,
                           cpu=spec.runtime.resources.cpu, memory=spec.runtime.resources.memory,
                           protocol=spec.runtime.protocol)
    observed_isvc = await ctl.kube.get(k8s.INFERENCE_SERVICES, namespace, name)
    current = rollout.current_routing(status, target) or isvc.Routing(stable=target)
    observed = isvc.observe(observed_isvc, current, runtime.mode)
    judgement = await _analyse(ctl, mdep, status, spec, target, observed, now)
    by = (meta.get("annotations") or {}).get(CHANGED_BY_ANNOTATION, "")
    decision = rollout.decide(status=status, target=target, policy=spec.rollout, observed=observed, now=now, by=by,
                              judgement=judgement, source=ctl.serving_metrics.source, shadow=shadow)
    if decision.status.shadow is not None and decision.routing.mirror and decision.status.rollout is None:
        decision.status.shadow = await _shadow_values(ctl, mdep, decision.status, spec, target, observed, now)
    desired = isvc.settle(observed_isvc, isvc.build(mdep, decision.routing, runtime), runtime.mode)
    if observed_isvc is None:
        await ctl.kube.create_if_absent(k8s.INFERENCE_SERVICES, namespace, desired)
    elif (patch := isvc.update_patch(observed_isvc, desired)) is not None:
        await ctl.kube.patch(k8s.INFERENCE_SERVICES, namespace, name, patch)
    for event_type, reason, message in decision.events:
        ctl.post_event(mdep, event_type, reason, message)
    for action in decision.actions:
        metrics.ROLLOUT_ACTIONS.labels(namespace, name, action).inc()
    metrics.CANARY_PERCENT.labels(namespace, name).set(decision.routing.percent if decision.routing.candidate else 0)
    wire = decision.status.to_wire()
    ready = decision.status.phase == "Ready"
    reason = {"Ready": "Serving", "Progressing": "RolloutInProgress", "RollingBack": "RollingBack",
              "Failed": "RolledBack"}[decision.status.phase or "Progressing"]
    wire["conditions"] = set_condition(
        (mdep.get("status") or {}).get("conditions"), type_="Ready", status=ready, reason=reason,
        message=decision.status.message or "", now=now, generation=generation)
    wire.update(observedGeneration=generation, inferenceService=name, url=observed.url)
    await _write_status(ctl, mdep, wire)
    if playground is not None and (playground.get("status") or {}).get("deployment") != name and ready:
        await ctl.patch_status(k8s.PLAYGROUNDS, playground, {"deployment": name})


async def _analyse(ctl: Controller, mdep: dict[str, Any], status: ModelDeploymentStatus, spec: ModelDeploymentSpec,
                   target: isvc.Artifact, observed: isvc.Observed, now: Any) -> Judgement | None:
    due = rollout.analysis_due(status, spec.rollout, now, observed, target)
    if due is None or status.stable is None or status.rollout is None:
        return None
    meta = mdep["metadata"]
    candidate = Subject(meta["namespace"], meta["name"], due.candidate.submission)
    stable = Subject(meta["namespace"], meta["name"], status.stable.submission)
    key = (meta["uid"], f"{status.rollout.target.submission}/{status.rollout.stage}/{status.rollout.step}")
    try:
        values = await ctl.serving_metrics.measure(candidate, stable, due.window_seconds, shadow=due.stage == "shadow",
                                                   metrics_url=_metrics_url(observed), key=key)
    except MetricsUnavailable as error:
        logger.warning("analysis of %s/%s: %s", meta["namespace"], meta["name"], error)
        return Judgement("Inconclusive", {}, [], f"metrics unavailable: {error}")
    if values is None:
        return Judgement("Inconclusive", {}, [], "first direct scrape taken (no Prometheus configured); "
                                                 "judged on the next tick")
    judgement = judge(values, spec.rollout.analysis, shadow=due.stage == "shadow")
    metrics.ANALYSES.labels(meta["namespace"], meta["name"], judgement.verdict).inc()
    return judgement


async def _shadow_values(ctl: Controller, mdep: dict[str, Any], status: ModelDeploymentStatus,
                         spec: ModelDeploymentSpec, target: isvc.Artifact, observed: isvc.Observed, now: Any) -> Any:
    """Refresh the standalone shadow's comparison with the stable model (over the last step interval)."""
    shadow = status.shadow
    assert shadow is not None
    meta = mdep["metadata"]
    try:
        values = await ctl.serving_metrics.measure(
            Subject(meta["namespace"], meta["name"], shadow.submission),
            Subject(meta["namespace"], meta["name"], target.submission), spec.rollout.step_interval_seconds,
            shadow=True, metrics_url=_metrics_url(observed), key=(meta["uid"], f"shadow/{shadow.submission}"))
    except MetricsUnavailable as error:
        return shadow.model_copy(update={"message": f"metrics unavailable: {error}"})
    if values is None:
        return shadow
    judged = judge(values, spec.rollout.analysis, shadow=True)
    return shadow.model_copy(update={"values": judged.values, "updated_at": now, "message": judged.message})


def _metrics_url(observed: isvc.Observed) -> str | None:
    return f"{observed.url.rstrip('/')}/metrics" if observed.url else None


async def _refuse(ctl: Controller, mdep: dict[str, Any], status: ModelDeploymentStatus, refusal: Refusal) -> None:
    """A target that cannot be served: the stable model (if any) keeps serving; the status says why."""
    meta = mdep["metadata"]
    previous = (mdep.get("status") or {})
    if previous.get("message") != refusal.message:
        ctl.post_event(mdep, "Warning", refusal.reason, refusal.message)
    serving = f" ({status.stable.submission} keeps serving)" if status.stable is not None else ""
    wire: dict[str, Any] = {
        "phase": "Failed",
        "message": refusal.message + serving,
        "observedGeneration": meta.get("generation"),
        "conditions": set_condition(previous.get("conditions"), type_="Ready", status=False, reason=refusal.reason,
                                    message=refusal.message, now=utcnow(), generation=meta.get("generation")),
    }
    await ctl.patch_status(k8s.MODEL_DEPLOYMENTS, mdep, wire)


async def _write_status(ctl: Controller, mdep: dict[str, Any], wire: dict[str, Any]) -> None:
    previous = mdep.get("status") or {}
    patch = {**{key: None for key in CLEARABLE if key not in wire and key in previous}, **wire}
    if any(previous.get(key) != value for key, value in patch.items() if key != "conditions") or (
            previous.get("conditions") != patch["conditions"]):
        await ctl.patch_status(k8s.MODEL_DEPLOYMENTS, mdep, patch)


async def forget_deployment(ctl: Controller, mdep: dict[str, Any]) -> None:
    """On deletion: the InferenceService goes (also by garbage collection), the Playground stops naming it."""
    meta = mdep["metadata"]
    await ctl.kube.delete(k8s.INFERENCE_SERVICES, meta["namespace"], meta["name"])
    playground_name = (mdep.get("spec") or {}).get("playground")
    playground = await ctl.kube.get(k8s.PLAYGROUNDS, meta["namespace"], playground_name) if playground_name else None
    if playground is not None and (playground.get("status") or {}).get("deployment") == meta["name"]:
        await ctl.patch_status(k8s.PLAYGROUNDS, playground, {"deployment": None})
