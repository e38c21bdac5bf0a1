"""A participant who can write Submission status gains nothing: the operator decides from its own records.

Each test plays the attacker with status writes (what `submissions/status` rights, or a buggy client,
allow) against the real operator in the local cluster, and checks that leaderboards, quotas and
admission decisions are unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import wait_for
from tests.integration.conftest import cluster, core, custom_objects  # noqa: F401  (fixtures)
from tests.integration.holdouts import iris_split, open_iris_playground

pytestmark = pytest.mark.slow  # flows through the real operator

SUB = ("podium.dev", "v1alpha1", "default", "submissions")


@pytest.fixture
def arena(cluster, custom_objects):  # noqa: F811
    """A competition with a quota of one submission a day per member."""
    playground, _, _ = open_iris_playground(
        custom_objects, competition={"privateFraction": 0.5, "seed": 3, "quotaPerDay": 1})
    return playground, np.asarray(iris_split()[3], dtype=object)


def _wrong(y: np.ndarray, count: int) -> np.ndarray:
    predictions = y.copy()
    predictions[:count] = np.where(predictions[:count] == "setosa", "virginica", "setosa")
    return predictions


def _forge(custom_objects, name: str, status: dict) -> None:  # noqa: F811
    custom_objects.patch_namespaced_custom_object_status(*SUB, name, {"status": status})


def test_a_forged_evaluated_status_never_reaches_the_leaderboard(arena, custom_objects):  # noqa: F811
    playground, y = arena
    playground.submit_predictions(_wrong(y, 6), name="honest", track="experiment")
    playground.submit_predictions(_wrong(y, 30), name="mallory", track="competition")
    playground.submit_predictions(_wrong(y, 30), name="mallory-2", track="competition")  # over quota: Rejected
    results = {s["metadata"]["name"]: s["status"] for s in playground.wait_for("honest", "mallory", "mallory-2")}
    assert results["mallory-2"]["phase"] == "Rejected"

    forged = {"phase": "Evaluated", "version": 99, "score": 1.0, "verified": True, "framework": "sklearn",
              "metrics": {"accuracy": 1.0}, "submitter": "honest"}
    _forge(custom_objects, "mallory-2", forged)
    _forge(custom_objects, "mallory", {**forged, "version": results["mallory"]["version"]})
    playground.submit_predictions(_wrong(y, 10), name="trigger", track="experiment")  # refreshes the board
    playground.wait_for("trigger")

    def refreshed() -> list[dict]:
        board = playground.get()["status"].get("leaderboard") or []
        return board if any(row["submission"] == "trigger" for row in board) else []

    board = wait_for(refreshed, what="the board refreshed after the forgery")
    rows = {row["submission"]: row for row in board}
    assert "mallory-2" not in rows, "a Rejected submission ranked from its forged status"
    assert rows["mallory"]["score"] < 1.0 and rows["mallory"]["verified"] is False
    assert rows["mallory"]["submitter"] == results["mallory"]["submitter"]
    assert board[0]["submission"] == "honest"


def test_clearing_status_versions_does_not_bypass_the_quota(arena, custom_objects):  # noqa: F811
    playground, y = arena
    playground.submit_predictions(_wrong(y, 5), name="first", track="competition")
    (first,) = playground.wait_for("first")
    assert first["status"]["phase"] == "Evaluated"
    _forge(custom_objects, "first", {"version": None, "timings": None, "phase": "Pending"})  # "I never submitted"
    playground.submit_predictions(_wrong(y, 4), name="second", track="competition")
    (second,) = playground.wait_for("second")
    assert second["status"]["phase"] == "Rejected" and "quota 1" in second["status"]["message"]


def test_a_rejected_submission_cannot_be_reopened_through_its_status(arena, cluster, custom_objects, core):  # noqa: F811
    playground, y = arena
    playground.submit_predictions(_wrong(y, 5), name="first", track="competition")
    playground.wait_for("first")
    playground.submit_predictions(_wrong(y, 1), name="again", track="competition")
    (again,) = playground.wait_for("again")
    assert again["status"]["phase"] == "Rejected"

    # Re-open it and hide the submission that used the quota, then let the operator look again.
    _forge(custom_objects, "again", {"phase": None, "message": None, "conditions": None})
    _forge(custom_objects, "first", {"version": None, "timings": None})
    cluster.stop_operator()
    cluster.start_operator()  # a restart resumes every Submission
    restored = wait_for(lambda: (playground.submission("again").get("status") or {}).get("phase") == "Rejected"
                        and playground.submission("first")["status"].get("version") == 1, timeout=60,
                        what="the operator to rewrite both statuses from its records")
    assert restored
    jobs = {job.metadata.name for job in _jobs(cluster)}
    assert not any(name.startswith("again-") for name in jobs), f"the rejected submission was evaluated: {jobs}"


def _jobs(cluster):  # noqa: F811
    import kubernetes.client

    config = kubernetes.client.Configuration()
    config.host = cluster.api.url
    return kubernetes.client.BatchV1Api(kubernetes.client.ApiClient(config)).list_namespaced_job("default").items
