from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium_operator.reconcile.leaderboard import leaderboard_rows
from podium_operator.reconcile.records import SubmissionRecord, status_sync_patch
from podium_operator.reconcile.submission import (
    admission_problem,
    failure_message,
    job_state,
    next_action,
    reference_problem,
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


def _evaluated(name, version, accuracy, *, track="experiment", submitter="ada", when="2026-11-21T10:00:00Z",
               metrics=None):
    return SubmissionRecord(
        submission=name, uid=f"uid-{name}", playground="pg", track=track, submitter=submitter, phase="Evaluated",
        version=version, verified=True, metrics=metrics or {"accuracy": accuracy, "f1_macro": accuracy / 2},
        metadata={"n_params": 10}, submitted_at=when,
    )


def test_leaderboard_ranks_by_direction_and_breaks_ties_by_version():
    rows = leaderboard_rows([_evaluated("b", 2, 0.9), _evaluated("a", 1, 0.9), _evaluated("c", 3, 0.95)], PG)
    assert [(r["rank"], r["submission"]) for r in rows] == [(1, "c"), (2, "a"), (3, "b")]
    assert rows[0]["metadata"] == {"n_params": 10} and rows[0]["verified"] is True
    regression = PlaygroundSpec.model_validate({"task": "regression", "holdout": {"features": "f", "labels": "l"},
                                                "primaryMetric": "rmse"})
    subs = [_evaluated("x", 1, 0, metrics={"rmse": 2.0}), _evaluated("y", 2, 0, metrics={"rmse": 1.0})]
    assert [r["submission"] for r in leaderboard_rows(subs, regression)] == ["y", "x"]


def test_private_board_uses_private_scores_of_competition_entries_only():
    subs = [_evaluated("a", 1, 0.9, track="competition"), _evaluated("b", 2, 0.8, track="competition"),
            _evaluated("e", 3, 1.0)]
    rows = leaderboard_rows(subs, PG, private_scores={"uid-a": {"accuracy": 0.7}, "uid-b": {"accuracy": 0.85}})
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
    assert submitted_today(subs, submitter="ada", now=NOW) == 1


def test_untrusted_metadata_is_bounded_to_short_scalars():
    from podium_operator.reconcile.submission import MAX_METADATA_KEYS, bounded_metadata

    raw = {"n_params": 10, "name": "x" * 10_000, "nested": {"a": 1}, "ok": True, **{f"k{i}": i for i in range(500)}}
    kept = bounded_metadata(raw)
    assert kept["n_params"] == 10 and kept["ok"] is True and len(kept["name"]) == 256
    assert "nested" not in kept and len(kept) <= MAX_METADATA_KEYS
    assert bounded_metadata(["not", "a", "dict"]) == {}


def test_a_forged_status_is_rewritten_from_the_record():
    record = _evaluated("a", 3, 0.5).model_copy(update={"evaluated_at": "2026-11-21T10:01:00Z"})
    forged = {"phase": "Evaluated", "version": 1, "score": 1.0, "verified": True, "submitter": "mallory",
              "metrics": {"accuracy": 1.0, "forged": 1.0}, "timings": {"submittedAt": "2026-11-21T10:00:00Z"}}
    patch = status_sync_patch(forged, record)
    assert patch["version"] == 3 and patch["submitter"] == "ada" and patch["score"] is None
    assert patch["metrics"] == {"forged": None, "accuracy": 0.5, "f1_macro": 0.25}  # merge patch drops the extra key
    shown = {**forged, **patch}
    assert status_sync_patch({k: v for k, v in shown.items() if v is not None} | {
        "metrics": record.metrics, "timings": patch["timings"]}, record) == {}


def test_a_rejected_record_shows_no_version_or_score_whatever_the_status_claims():
    record = SubmissionRecord(submission="b", uid="u", playground="pg", submitter="ada", phase="Rejected",
                              reason="QuotaExceeded", message="quota")
    patch = status_sync_patch({"phase": "Evaluated", "version": 7, "score": 0.99, "metrics": {"accuracy": 0.99}},
                              record)
    assert patch["phase"] == "Rejected" and patch["version"] is None and patch["score"] is None
    assert patch["metrics"] is None


# --- References: a Submission names only its submitter's uploads ----------------------------------

PREFIX = "s3://podium/uploads/default/pg/ada/"


def _refs(**source) -> SubmissionSpec:
    return SubmissionSpec.model_validate({"playground": "pg", **source})


def test_own_uploads_are_accepted():
    assert reference_problem(_refs(predictions={"uri": f"{PREFIX}p-1a2b.npz"}), PREFIX) is None
    spec = _refs(model={"uri": f"{PREFIX}m.tar.gz", "preprocessorUri": f"{PREFIX}preprocessors/s.tar.gz"})
    assert reference_problem(spec, PREFIX) is None


@pytest.mark.parametrize(("source", "field"), [
    ({"predictions": {"uri": "s3://podium/holdouts/iris/labels.csv"}}, "predictions.uri"),
    ({"model": {"uri": f"{PREFIX}m.tar.gz", "preprocessorUri": "s3://podium/podium-private/default/pg/split.json"}},
     "model.preprocessorUri"),
    ({"model": {"uri": "s3://podium/uploads/default/pg/bob/m.tar.gz"}}, "model.uri"),
    ({"model": {"uri": "s3://podium/uploads/default/pg/ada-evil/m.tar.gz"}}, "model.uri"),  # a prefix of a name
    ({"predictions": {"uri": "/etc/passwd"}}, "predictions.uri"),
    ({"predictions": {"uri": "file:///work/labels.csv"}}, "predictions.uri"),
    ({"predictions": {"uri": f"{PREFIX}../bob/p.npz"}}, "predictions.uri"),
    ({"predictions": {"uri": f"{PREFIX}p.npz?versionId=1"}}, "predictions.uri"),
    ({"predictions": {"uri": f"{PREFIX}"}}, "predictions.uri"),
])
def test_anything_else_is_rejected_naming_the_field(source, field):
    rejection = reference_problem(_refs(**source), PREFIX)
    assert rejection is not None and rejection.reason == "ForeignReference"
    assert rejection.message.startswith(f"{field}: ") and PREFIX in rejection.message


@given(st.lists(st.text(st.characters(codec="ascii", exclude_characters="/?#\\"), min_size=1, max_size=8),
                min_size=1, max_size=4))
def test_a_key_below_the_prefix_is_accepted_exactly_when_no_segment_can_be_normalised_away(segments):
    uri = PREFIX + "/".join(segments)
    accepted = reference_problem(_refs(predictions={"uri": uri}), PREFIX) is None
    normalisable = any(s in (".", "..") for s in segments) or any(ord(c) < 32 for s in segments for c in s)
    assert accepted == (not normalisable)


def test_custom_metadata_is_a_leaderboard_column_only_when_given():
    tagged = _evaluated("t", 1, 0.9).model_copy(update={"custom_metadata": {"lr": 0.1, "augmented": True}})
    rows = leaderboard_rows([tagged, _evaluated("u", 2, 0.8)], PG)
    assert rows[0]["customMetadata"] == {"lr": 0.1, "augmented": True}
    assert "customMetadata" not in rows[1]
