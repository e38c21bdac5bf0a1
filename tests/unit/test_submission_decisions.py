from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium_operator.reconcile.leaderboard import leaderboard_rows
from podium_operator.reconcile.submission import (
    admission_problem,
    failure_message,
    job_state,
    next_action,
    submitted_today,
)

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
PG = PlaygroundSpec.model_validate({
    "task": "classification", "holdout": {"features": "f.csv", "labels": "l.csv"}, "classLabels": ["a", "b"],
    "primaryMetric": "accuracy", "competition": {"quotaPerDay": 2, "deadline": "2026-12-01T00:00:00Z"},
})


def sub(track: str = "competition", **extra) -> SubmissionSpec:
    return SubmissionSpec.model_validate({"playground": "pg", "track": track, "model": {"uri": "m.tgz"}, **extra})


def admit(spec: SubmissionSpec, playground: PlaygroundSpec = PG, *, today: int = 0, now: datetime = NOW,
          closed: bool = False):
    return admission_problem(spec, playground, playground_closed=closed, submitter="ada", submitted_today=today,
                             now=now)


def test_admitted_within_quota_and_deadline():
    assert admit(sub()) is None and admit(sub(), today=1) is None


def test_quota_exceeded_names_quota_and_submitter():
    rejection = admit(sub(), today=2)
    assert rejection.reason == "QuotaExceeded" and "ada" in rejection.message and "quota 2" in rejection.message


def test_deadline_passed_and_closed_competition_reject_but_experiment_still_open():
    assert admit(sub(), now=NOW + timedelta(days=30)).reason == "DeadlinePassed"
    assert admit(sub(), closed=True).reason == "CompetitionClosed"
    assert admit(sub("experiment"), now=NOW + timedelta(days=30), today=99) is None


def test_competition_track_without_competition():
    plain = PG.model_copy(update={"competition": None})
    assert admit(sub(), plain).reason == "TrackDisabled"


def test_private_playground_members_only():
    private = PG.model_copy(update={"visibility": "private", "members": ["bob"]})
    assert admit(sub("experiment"), private).reason == "NotAMember"


def _job(condition: str | None, **spec):
    status = {"conditions": [{"type": condition, "status": "True", "reason": "DeadlineExceeded"}]} if condition else {}
    return {"metadata": {"name": "j"}, "spec": spec, "status": status}


def test_next_action_walks_steps_in_order():
    steps = ("stage", "predict", "score")
    assert next_action(steps, {}).kind == "create" and next_action(steps, {}).step == "stage"
    done = _job("Complete")
    assert next_action(steps, {"stage": done, "predict": _job(None)}) .kind == "wait"
    assert next_action(steps, {"stage": done, "predict": _job("Failed")}).step == "predict"
    assert next_action(steps, {"stage": done, "predict": done, "score": done}).kind == "scored"
    assert job_state(None) == "absent"


def test_failure_messages_are_understandable():
    timeout = failure_message("predict", _job("Failed", activeDeadlineSeconds=30), None)
    assert "Timed out" in timeout and "30s" in timeout and "timeoutSeconds" in timeout
    pod = {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 1, "reason": "Error",
                                                                      "message": "ArtifactError: bad tar"}}}]}}
    crashed = failure_message("predict", {"status": {}}, pod)
    assert "exit code 1" in crashed and "bad tar" in crashed and "running your model" in crashed
    oom = {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}
    assert "Out of memory" in failure_message("predict", {"status": {}}, oom)


def _evaluated(name, version, accuracy, *, track="experiment", submitter="ada", when="2026-11-21T10:00:00Z"):
    return {
        "metadata": {"name": name},
        "spec": {"playground": "pg", "track": track},
        "status": {"phase": "Evaluated", "version": version, "submitter": submitter, "verified": True,
                   "metrics": {"accuracy": accuracy, "f1_macro": accuracy / 2}, "metadata": {"n_params": 10},
                   "timings": {"submittedAt": when}},
    }


def test_leaderboard_ranks_by_direction_and_breaks_ties_by_version():
    rows = leaderboard_rows([_evaluated("b", 2, 0.9), _evaluated("a", 1, 0.9), _evaluated("c", 3, 0.95)], PG)
    assert [(r["rank"], r["submission"]) for r in rows] == [(1, "c"), (2, "a"), (3, "b")]
    assert rows[0]["metadata"] == {"n_params": 10} and rows[0]["verified"] is True
    regression = PlaygroundSpec.model_validate({"task": "regression", "holdout": {"features": "f", "labels": "l"},
                                                "primaryMetric": "rmse"})
    subs = [_evaluated("x", 1, 0), _evaluated("y", 2, 0)]
    subs[0]["status"]["metrics"] = {"rmse": 2.0}
    subs[1]["status"]["metrics"] = {"rmse": 1.0}
    assert [r["submission"] for r in leaderboard_rows(subs, regression)] == ["y", "x"]


def test_private_board_uses_private_scores_of_competition_entries_only():
    subs = [_evaluated("a", 1, 0.9, track="competition"), _evaluated("b", 2, 0.8, track="competition"),
            _evaluated("e", 3, 1.0)]
    rows = leaderboard_rows(subs, PG, private_scores={"a": {"accuracy": 0.7}, "b": {"accuracy": 0.85}})
    assert [(r["submission"], r["score"]) for r in rows] == [("b", 0.85), ("a", 0.7)]


@pytest.mark.parametrize("limit", [1, 2])
def test_leaderboard_limit(limit):
    assert len(leaderboard_rows([_evaluated(str(i), i, i / 10) for i in range(1, 5)], PG, limit=limit)) == limit


def test_submitted_today_counts_only_this_members_competition_entries_today():
    subs = [
        _evaluated("a", 1, 0.5, track="competition"),
        _evaluated("b", 2, 0.5, track="competition", when="2026-11-20T23:59:00Z"),
        _evaluated("c", 3, 0.5, track="experiment"),
        _evaluated("d", 4, 0.5, track="competition", submitter="bob"),
    ]
    assert submitted_today(subs, submitter="ada", playground="pg", now=NOW) == 1


def test_untrusted_metadata_is_bounded_to_short_scalars():
    from podium_operator.reconcile.submission import MAX_METADATA_KEYS, bounded_metadata

    raw = {"n_params": 10, "name": "x" * 10_000, "nested": {"a": 1}, "ok": True, **{f"k{i}": i for i in range(500)}}
    kept = bounded_metadata(raw)
    assert kept["n_params"] == 10 and kept["ok"] is True and len(kept["name"]) == 256
    assert "nested" not in kept and len(kept) <= MAX_METADATA_KEYS
    assert bounded_metadata(["not", "a", "dict"]) == {}
