"""Rollout decisions (pure): spec target + current status + what KServe reports + analysis -> the next state.

A ModelDeployment serves ``status.stable``. When the spec names another submission, that one becomes the
candidate: optionally a shadow stage (a mirrored copy of live traffic, nothing returned to clients), then
the canary steps of ``spec.rollout.steps``, each held ``stepIntervalSeconds`` and judged by the analysis.
Passing the last step promotes the candidate; failing any stage rolls it back, and the rolled-back target is
remembered (``status.rejected``) so it is not tried again until the spec names something else.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Literal

from podium.api.deployment import (
    AnalysisReport,
    ModelDeploymentStatus,
    RejectedTarget,
    RolloutAction,
    RolloutEvent,
    RolloutPolicy,
    RolloutProgress,
    ServedModel,
    ShadowStatus,
    TrafficTarget,
)
from podium_operator.reconcile.analysis import Judgement
from podium_operator.reconcile.inference_service import Artifact, Observed, Routing

HISTORY_LIMIT = 50
# A candidate that is not up after this many step intervals (and at least NOT_READY_MIN_SECONDS) is rolled back.
NOT_READY_INTERVALS = 5
NOT_READY_MIN_SECONDS = 300.0


@dataclass(frozen=True)
class AnalysisDue:
    """The flow should measure ``candidate`` against the stable model over the last ``window_seconds``."""

    stage: Literal["shadow", "canary"]
    candidate: Artifact
    window_seconds: int


@dataclass(frozen=True)
class Decision:
    routing: Routing
    status: ModelDeploymentStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    actions: list[RolloutAction] = field(default_factory=list)


def served(artifact: Artifact) -> ServedModel:
    return ServedModel(submission=artifact.submission, version=artifact.version, storage_uri=artifact.storage_uri)


def same(model: ServedModel | RejectedTarget | None, artifact: Artifact | None) -> bool:
    if model is None or artifact is None:
        return model is None and artifact is None
    uri = getattr(model, "storage_uri", None)
    return model.submission == artifact.submission and (uri is None or uri == artifact.storage_uri)


def _artifact(model: ServedModel, like: Artifact) -> Artifact:
    """The stable model as an Artifact (task and labels are the playground's, shared by every model)."""
    return Artifact(submission=model.submission, version=model.version, storage_uri=model.storage_uri or "",
                    task=like.task, class_labels=like.class_labels)


def _label(artifact: Artifact | ServedModel) -> str:
    return f"{artifact.submission} (v{artifact.version})" if artifact.version is not None else artifact.submission


class _Builder:
    """Accumulates one decision's status changes, history entries and Events."""

    def __init__(self, status: ModelDeploymentStatus, now: datetime.datetime, by: str) -> None:
        self.status = status.model_copy(deep=True)
        self.now, self.by = now, by
        self.events: list[tuple[str, str, str]] = []
        self.actions: list[RolloutAction] = []

    def record(self, action: RolloutAction, artifact: Artifact | ServedModel, message: str, *,
               percent: int | None = None, values: dict[str, float | None] | None = None,
               warning: bool = False) -> None:
        previous = self.status.stable.submission if self.status.stable else None
        event = RolloutEvent(time=self.now, action=action, submission=artifact.submission, version=artifact.version,
                             previous=previous if previous != artifact.submission else None, by=self.by,
                             percent=percent, reason=message, values=dict(values or {}))
        self.status.history = [*self.status.history, event][-HISTORY_LIMIT:]
        self.events.append(("Warning" if warning else "Normal", action, message))
        self.actions.append(action)

    def done(self, routing: Routing, phase: str, message: str) -> Decision:
        status = self.status
        status.phase = phase  # type: ignore[assignment]
        status.message = message
        status.canary = served(routing.candidate) if routing.candidate else None
        status.canary_percent = routing.percent if routing.candidate else None
        stable_share = 100 - (routing.percent if routing.candidate else 0)
        traffic = [TrafficTarget(submission=routing.stable.submission, version=routing.stable.version,
                                 role="stable", percent=stable_share)]
        if routing.candidate:
            role: Literal["canary", "shadow"] = "shadow" if routing.mirror else "canary"
            traffic.append(TrafficTarget(submission=routing.candidate.submission, version=routing.candidate.version,
                                         role=role, percent=routing.percent))
        status.traffic = traffic
        return Decision(routing=routing, status=status, events=self.events, actions=self.actions)


def current_routing(status: ModelDeploymentStatus, like: Artifact) -> Routing | None:
    """What the InferenceService was last asked to serve, from the status (None before the first deploy)."""
    if status.stable is None or not status.stable.storage_uri:
        return None
    stable = _artifact(status.stable, like)
    if status.rollout is not None:
        return _routing(stable, _artifact(status.rollout.target, like), status.rollout)
    if status.canary is not None and status.canary.storage_uri:
        return Routing(stable=stable, candidate=_artifact(status.canary, like), percent=status.canary_percent or 0,
                       mirror=status.shadow is not None)
    return Routing(stable=stable)


def analysis_due(status: ModelDeploymentStatus, policy: RolloutPolicy, now: datetime.datetime,
                 observed: Observed, candidate: Artifact | None) -> AnalysisDue | None:
    """Whether the current stage has run its interval with the candidate up (then the flow measures it)."""
    progress = status.rollout
    if progress is None or candidate is None or not same(progress.target, candidate):
        return None
    if not observed.candidate_ready or observed.candidate_percent != progress.percent:
        return None
    seconds = policy.shadow_seconds if progress.stage == "shadow" else policy.step_interval_seconds
    elapsed = (now - progress.step_started_at).total_seconds()
    if elapsed < seconds:
        return None
    return AnalysisDue(stage=progress.stage, candidate=candidate, window_seconds=max(int(elapsed), 2))


def decide(*, status: ModelDeploymentStatus, target: Artifact, policy: RolloutPolicy, observed: Observed,
           now: datetime.datetime, by: str = "", judgement: Judgement | None = None,
           source: Literal["prometheus", "direct"] = "prometheus", shadow: Artifact | None = None) -> Decision:
    """The next routing and status. ``judgement`` is the analysis :func:`analysis_due` asked for, if any."""
    b = _Builder(status, now, by)
    st = b.status
    if st.stable is None or not st.stable.storage_uri:
        st.stable = served(target)
        b.record("Deployed", target, f"serving {_label(target)}")
        return _settled(b, Routing(stable=target), observed)
    stable = _artifact(st.stable, target)
    if same(st.stable, target):
        if st.rollout is not None:  # the spec went back to the stable model mid-rollout
            b.record("RolledBack", _artifact(st.rollout.target, target),
                     f"the spec names {_label(target)} again: rollout of {_label(st.rollout.target)} stopped",
                     warning=True)
            st.rollout = None
        st.rejected = None
        return _settled(b, _with_shadow(b, stable, shadow), observed)
    if st.rejected is not None and same(st.rejected, target):
        return _settled(b, Routing(stable=stable), observed)
    st.rejected = None
    if policy.strategy == "replace":
        st.rollout = None
        b.record("Replaced", target, f"{_label(target)} replaces {_label(stable)} (strategy replace)")
        st.stable = served(target)
        return _settled(b, Routing(stable=target), observed)
    progress = st.rollout
    if progress is None or not same(progress.target, target):
        if progress is not None:
            b.record("RolledBack", _artifact(progress.target, target),
                     f"superseded by {_label(target)} before it was promoted", warning=True)
        shadow_stage = policy.shadow_seconds > 0
        percent = 0 if shadow_stage else policy.steps[0]
        st.rollout = RolloutProgress(target=served(target), stage="shadow" if shadow_stage else "canary", step=0,
                                     percent=percent, started_at=now, step_started_at=now, by=by)
        st.analysis = None
        if shadow_stage:
            b.record("ShadowStarted", target, f"{_label(target)} gets a mirrored copy of {_label(stable)}'s traffic")
        else:
            b.record("CanaryStarted", target, f"{_label(target)} gets {percent}% of the traffic", percent=percent)
        return b.done(_routing(stable, target, st.rollout), "Progressing", _progress_message(st.rollout))
    routing = _routing(stable, target, progress)
    if observed.failure and not observed.candidate_ready:
        return _roll_back(b, stable, target, "CandidateFailed", observed.failure, policy)
    waited = (now - progress.step_started_at).total_seconds()
    if not observed.candidate_ready and waited > max(NOT_READY_MIN_SECONDS,
                                                     NOT_READY_INTERVALS * policy.step_interval_seconds):
        return _roll_back(b, stable, target, "CandidateNotReady",
                          f"not ready after {int(waited)} s: {observed.message or 'no ready predictor'}", policy)
    if judgement is None:
        return b.done(routing, "Progressing", _progress_message(progress, observed))
    st.analysis = AnalysisReport(time=now, source=source, stage=progress.stage, percent=progress.percent,
                                 values=judgement.values, verdict=judgement.verdict, reasons=judgement.reasons,
                                 message=judgement.message)
    if judgement.verdict == "Inconclusive":
        return b.done(routing, "Progressing", f"{_progress_message(progress)}; waiting: {judgement.message}")
    if judgement.verdict == "Failed":
        return _roll_back(b, stable, target, "AnalysisFailed", judgement.message, policy, judgement.values)
    return _advance(b, stable, target, progress, policy, judgement)


def _advance(b: _Builder, stable: Artifact, target: Artifact, progress: RolloutProgress, policy: RolloutPolicy,
             judgement: Judgement) -> Decision:
    st = b.status
    next_step = 0 if progress.stage == "shadow" else progress.step + 1
    if next_step < len(policy.steps):
        percent = policy.steps[next_step]
        st.rollout = progress.model_copy(update={"stage": "canary", "step": next_step, "percent": percent,
                                                 "step_started_at": b.now})
        b.record("StepAdvanced", target, f"{_label(target)} passed the analysis: {percent}% of the traffic",
                 percent=percent, values=judgement.values)
        return b.done(_routing(stable, target, st.rollout), "Progressing", _progress_message(st.rollout))
    if not policy.auto_promote:
        return b.done(_routing(stable, target, progress), "Progressing",
                      f"{_label(target)} passed its last step at {progress.percent}%: waiting for promotion "
                      "(set spec.rollout.autoPromote: true)")
    b.record("Promoted", target, f"{_label(target)} promoted, replacing {_label(stable)}", percent=100,
             values=judgement.values)
    st.stable, st.rollout = served(target), None
    return b.done(Routing(stable=target), "Progressing", f"promoting {_label(target)} to 100%")


def _roll_back(b: _Builder, stable: Artifact, target: Artifact, reason: str, message: str, policy: RolloutPolicy,
               values: dict[str, float | None] | None = None) -> Decision:
    st = b.status
    progress = st.rollout
    if not policy.auto_rollback and progress is not None:
        return b.done(_routing(stable, target, progress), "Progressing",
                      f"{_label(target)} failed ({message}); holding it since spec.rollout.autoRollback is false")
    b.record("RolledBack", target, f"{_label(target)} rolled back: {message}", percent=0, values=values, warning=True)
    st.rollout = None
    st.rejected = RejectedTarget(submission=target.submission, version=target.version, reason=reason, message=message)
    return b.done(Routing(stable=stable), "RollingBack", f"rolling back {_label(target)}: {message}")


def _routing(stable: Artifact, target: Artifact, progress: RolloutProgress) -> Routing:
    return Routing(stable=stable, candidate=target, percent=progress.percent, mirror=progress.stage == "shadow")


def _with_shadow(b: _Builder, stable: Artifact, shadow: Artifact | None) -> Routing:
    """The standalone shadow (``spec.shadow``): mirrored traffic only, when no rollout is running."""
    if shadow is None or shadow.storage_uri == stable.storage_uri:
        b.status.shadow = None
        return Routing(stable=stable)
    if b.status.shadow is None or b.status.shadow.submission != shadow.submission:
        b.record("ShadowStarted", shadow, f"{_label(shadow)} gets a mirrored copy of {_label(stable)}'s traffic")
        b.status.shadow = ShadowStatus(submission=shadow.submission, version=shadow.version, updated_at=b.now)
    return Routing(stable=stable, candidate=shadow, percent=0, mirror=True)


def _settled(b: _Builder, routing: Routing, observed: Observed) -> Decision:
    """No rollout running: Ready once KServe serves the spec; RollingBack/Progressing until then."""
    rejected = b.status.rejected
    if observed.ready and (routing.candidate is None or observed.candidate_ready):
        if rejected is not None:
            return b.done(routing, "Failed", f"rolled back {rejected.submission}: {rejected.message}; serving "
                                             f"{_label(routing.stable)} (name another submission to try again)")
        return b.done(routing, "Ready", f"serving {_label(routing.stable)}" + (
            f"; {_label(routing.candidate)} in shadow" if routing.candidate else ""))
    phase = "RollingBack" if rejected is not None else "Progressing"
    return b.done(routing, phase, observed.message or f"waiting for {_label(routing.stable)} to be ready")


def _progress_message(progress: RolloutProgress, observed: Observed | None = None) -> str:
    what = "in shadow" if progress.stage == "shadow" else f"at {progress.percent}% (step {progress.step + 1})"
    message = f"{_label(progress.target)} {what}"
    if observed is not None and not observed.candidate_ready:
        message += ": waiting for its predictor to be ready"
    return message
