"""Rollout decisions (pure): deploy, canary steps gated by analysis, promotion, rollback, shadow."""

from __future__ import annotations

import datetime

from podium.api.deployment import ModelDeploymentStatus, RolloutPolicy
from podium_operator.reconcile import rollout
from podium_operator.reconcile.analysis import Judgement
from podium_operator.reconcile.inference_service import Artifact, Observed

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
V1 = Artifact("sub-a", 1, "s3://podium/uploads/a.tar.gz", "classification", ("x", "y"))
V2 = Artifact("sub-b", 2, "s3://podium/uploads/b.tar.gz", "classification", ("x", "y"))
POLICY = RolloutPolicy(steps=[10, 50], step_interval_seconds=30)
READY = Observed(exists=True, ready=True)
PASS = Judgement("Passed", {"errorRate": 0.0, "latencyRatio": 1.0})


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def up(percent: int) -> Observed:
    return Observed(exists=True, ready=True, candidate_ready=True, candidate_percent=percent)


def serving_v1() -> ModelDeploymentStatus:
    first = rollout.decide(status=ModelDeploymentStatus(), target=V1, policy=POLICY, observed=Observed(False), now=T0)
    assert first.status.phase == "Progressing" and first.routing.candidate is None
    ready = rollout.decide(status=first.status, target=V1, policy=POLICY, observed=READY, now=at(1))
    assert ready.status.phase == "Ready" and [e.action for e in ready.status.history] == ["Deployed"]
    return ready.status


def test_a_good_canary_steps_through_and_is_promoted() -> None:
    status = serving_v1()
    start = rollout.decide(status=status, target=V2, policy=POLICY, observed=READY, now=at(10), by="alice")
    assert (start.routing.candidate, start.routing.percent) == (V2, 10) and start.status.phase == "Progressing"
    assert start.status.traffic[0].percent == 90 and start.status.history[-1].by == "alice"
    status = start.status
    # not due before the interval, nor while KServe has not moved 10% to the candidate
    assert rollout.analysis_due(status, POLICY, at(20), up(10), V2) is None
    assert rollout.analysis_due(status, POLICY, at(50), Observed(True, True, True, 0), V2) is None
    due = rollout.analysis_due(status, POLICY, at(41), up(10), V2)
    assert due is not None and due.stage == "canary" and due.window_seconds == 31
    step = rollout.decide(status=status, target=V2, policy=POLICY, observed=up(10), now=at(41), judgement=PASS)
    assert step.routing.percent == 50 and step.actions == ["StepAdvanced"]
    assert step.status.analysis is not None and step.status.analysis.verdict == "Passed"
    last = rollout.decide(status=step.status, target=V2, policy=POLICY, observed=up(50), now=at(72), judgement=PASS)
    assert last.actions == ["Promoted"] and last.routing.candidate is None and last.routing.stable == V2
    assert last.status.stable is not None and last.status.stable.submission == "sub-b"
    done = rollout.decide(status=last.status, target=V2, policy=POLICY, observed=READY, now=at(73))
    assert done.status.phase == "Ready" and done.status.canary is None
    assert [e.action for e in done.status.history] == ["Deployed", "CanaryStarted", "StepAdvanced", "Promoted"]


def test_a_failing_canary_is_rolled_back_and_not_retried() -> None:
    status = rollout.decide(status=serving_v1(), target=V2, policy=POLICY, observed=READY, now=at(10)).status
    bad = Judgement("Failed", {"errorRate": 0.4}, ["error rate 0.400 > maxErrorRate 0.01"], "error rate 0.400")
    back = rollout.decide(status=status, target=V2, policy=POLICY, observed=up(10), now=at(41), judgement=bad)
    assert back.status.phase == "RollingBack" and back.routing.candidate is None and back.routing.stable == V1
    assert back.status.rejected is not None and back.status.history[-1].values == {"errorRate": 0.4}
    assert back.events[-1][0] == "Warning"
    failed = rollout.decide(status=back.status, target=V2, policy=POLICY, observed=READY, now=at(42))
    assert failed.status.phase == "Failed" and failed.routing.candidate is None  # V2 is not tried again
    assert "error rate" in (failed.status.message or "")
    again = rollout.decide(status=failed.status, target=V1, policy=POLICY, observed=READY, now=at(43))
    assert again.status.phase == "Ready" and again.status.rejected is None


def test_too_little_traffic_keeps_the_step_waiting() -> None:
    status = rollout.decide(status=serving_v1(), target=V2, policy=POLICY, observed=READY, now=at(10)).status
    idle = Judgement("Inconclusive", {"requests": 3.0}, [], "3 of the 20 requests")
    held = rollout.decide(status=status, target=V2, policy=POLICY, observed=up(10), now=at(41), judgement=idle)
    assert held.routing.percent == 10 and held.status.phase == "Progressing" and held.actions == []


def test_a_candidate_that_cannot_load_is_rolled_back() -> None:
    status = rollout.decide(status=serving_v1(), target=V2, policy=POLICY, observed=READY, now=at(10)).status
    broken = Observed(True, True, False, 0, failure="ModelLoadFailed: bad pickle")
    back = rollout.decide(status=status, target=V2, policy=POLICY, observed=broken, now=at(12))
    assert back.actions == ["RolledBack"] and back.status.rejected is not None
    assert back.status.rejected.reason == "CandidateFailed"


def test_shadow_stage_mirrors_before_any_traffic_moves() -> None:
    policy = RolloutPolicy(steps=[25], step_interval_seconds=5, shadow_seconds=20)
    start = rollout.decide(status=serving_v1(), target=V2, policy=policy, observed=READY, now=at(10))
    assert start.routing.mirror and start.routing.percent == 0 and start.actions == ["ShadowStarted"]
    assert [t.role for t in start.status.traffic] == ["stable", "shadow"]
    assert rollout.analysis_due(start.status, policy, at(25), up(0), V2) is None  # shadow runs 20 s
    assert rollout.analysis_due(start.status, policy, at(31), up(0), V2) is not None
    step = rollout.decide(status=start.status, target=V2, policy=policy, observed=up(0), now=at(31), judgement=PASS)
    assert not step.routing.mirror and step.routing.percent == 25


def test_replace_strategy_swaps_at_once() -> None:
    policy = RolloutPolicy(strategy="replace")
    swap = rollout.decide(status=serving_v1(), target=V2, policy=policy, observed=READY, now=at(10))
    assert swap.routing.candidate is None and swap.routing.stable == V2 and swap.actions == ["Replaced"]


def test_a_new_target_mid_rollout_supersedes_the_candidate() -> None:
    v3 = Artifact("sub-c", 3, "s3://podium/uploads/c.tar.gz", "classification", ("x", "y"))
    status = rollout.decide(status=serving_v1(), target=V2, policy=POLICY, observed=READY, now=at(10)).status
    swap = rollout.decide(status=status, target=v3, policy=POLICY, observed=up(10), now=at(20))
    assert swap.routing.candidate == v3 and swap.actions == ["RolledBack", "CanaryStarted"]


def test_standalone_shadow_when_no_rollout_runs() -> None:
    shadowed = rollout.decide(status=serving_v1(), target=V1, policy=POLICY, observed=READY, now=at(5), shadow=V2)
    assert shadowed.routing.mirror and shadowed.routing.candidate == V2 and shadowed.routing.percent == 0
    assert shadowed.status.shadow is not None and shadowed.status.shadow.submission == "sub-b"
    current = rollout.current_routing(shadowed.status, V1)
    assert current == shadowed.routing
    cleared = rollout.decide(status=shadowed.status, target=V1, policy=POLICY, observed=READY, now=at(6))
    assert cleared.routing.candidate is None and cleared.status.shadow is None


def test_history_is_bounded() -> None:
    status = serving_v1()
    for i in range(60):
        target = V2 if i % 2 == 0 else V1
        status = rollout.decide(status=status, target=target, policy=RolloutPolicy(strategy="replace"),
                                observed=READY, now=at(10 + i)).status
    assert len(status.history) == rollout.HISTORY_LIMIT


def test_unknown_values_are_left_out_of_the_status() -> None:
    """The API server stores numbers only: a value that could not be measured is absent, not null."""
    status = rollout.decide(status=serving_v1(), target=V2, policy=POLICY, observed=READY, now=at(10)).status
    partial = Judgement("Passed", {"errorRate": 0.0, "latencyRatio": None, "stableErrorRate": None})
    step = rollout.decide(status=status, target=V2, policy=POLICY, observed=up(10), now=at(41), judgement=partial)
    wire = step.status.to_wire()
    assert wire["history"][-1]["values"] == {"errorRate": 0.0} == wire["analysis"]["values"]
