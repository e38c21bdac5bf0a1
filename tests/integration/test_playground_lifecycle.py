"""A Playground's life through the real operator: frozen once admitted, owned Submissions, clean deletion,
holdout re-checks, and the Events a participant or owner would look for."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kubernetes.client.exceptions import ApiException

from podium import storage
from podium.client import ModelPlayground
from tests.helpers import wait_for
from tests.integration.holdouts import iris_playground, iris_split, upload_holdout

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")
SUB = ("podium.dev", "v1alpha1", "default", "submissions")


def _condition(obj: dict[str, Any], type_: str = "Ready") -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def _open(custom_objects, name: str, prefix: str, **spec: Any) -> tuple[ModelPlayground, np.ndarray]:
    _, X_test, _, y_test = iris_split()
    holdout = upload_holdout(X_test, y_test, prefix)
    custom_objects.create_namespaced_custom_object(*PG, iris_playground(name, *holdout, **spec))
    playground = ModelPlayground(name)
    playground.wait_ready()
    return playground, np.asarray(y_test, dtype=object)


def _events(core, name: str) -> dict[str, str]:
    return {e.reason: e.message for e in core.list_namespaced_event("default").items if e.involved_object.name == name}


def test_holdout_and_split_are_frozen_once_a_submission_is_admitted(cluster, custom_objects):
    playground, y_test = _open(custom_objects, "frozen", "s3://podium/holdouts/frozen",
                               competition={"privateFraction": 0.5, "seed": 3})
    # Before anything is admitted the owner may still change the split.
    custom_objects.patch_namespaced_custom_object(*PG, "frozen", {"spec": {"competition": {"seed": 4}}})
    wait_for(lambda: (playground.get()["status"].get("split") or {}).get("seed") == 4, what="the new split")
    playground.submit_predictions(y_test, name="first")
    playground.wait_for("first", timeout=60)
    for change in ({"competition": {"seed": 5}}, {"competition": {"privateFraction": 0.3}},
                   {"holdout": {"labels": "s3://podium/holdouts/other/labels.csv"}}):
        with pytest.raises(ApiException) as raised:
            custom_objects.patch_namespaced_custom_object(*PG, "frozen", {"spec": change})
        assert raised.value.status == 422
        assert "frozen once a Submission has been admitted" in raised.value.body and "new Playground" in raised.value.body
    # What does not change the scores may still change.
    custom_objects.patch_namespaced_custom_object(*PG, "frozen", {"spec": {"competition": {"quotaPerDay": 9}}})
    assert playground.get()["spec"]["competition"]["seed"] == 4


def test_deleting_a_playground_takes_its_submissions_and_objects_and_a_new_one_starts_clean(
    cluster, custom_objects
):
    playground, y_test = _open(custom_objects, "reborn", "s3://podium/holdouts/reborn",
                               competition={"privateFraction": 0.5, "seed": 1})
    playground.submit_predictions(y_test, name="old-a", track="competition")
    playground.submit_predictions(y_test, name="old-b")
    playground.wait_for("old-a", "old-b", timeout=90)
    wait_for(lambda: len(playground.get()["status"].get("leaderboard") or []) == 2, what="two rows")
    first = playground.get()
    owned = custom_objects.get_namespaced_custom_object(*SUB, "old-a")["metadata"].get("ownerReferences") or []
    assert [(o["kind"], o["name"], o["uid"]) for o in owned] == [("Playground", "reborn", first["metadata"]["uid"])]
    uploads = storage.list_uris("s3://podium/uploads/default/reborn/")
    private = storage.list_uris(f"s3://podium/podium-private/default/reborn/{first['metadata']['uid']}/")
    assert uploads and private

    custom_objects.delete_namespaced_custom_object(*PG, "reborn")
    wait_for(lambda: not custom_objects.list_namespaced_custom_object(*PG)["items"], what="the playground gone")
    wait_for(lambda: not [s for s in custom_objects.list_namespaced_custom_object(*SUB)["items"]
                          if s["spec"]["playground"] == "reborn"], what="its submissions gone")
    assert storage.list_uris("s3://podium/uploads/default/reborn/") == []
    assert storage.list_uris("s3://podium/podium-private/default/reborn/") == []
    assert storage.list_uris("s3://podium/podium-results/default/reborn/") == []

    again, _ = _open(custom_objects, "reborn", "s3://podium/holdouts/reborn2",
                     competition={"privateFraction": 0.5, "seed": 2})
    assert again.get()["status"].get("leaderboard") in (None, [])
    again.submit_predictions(y_test, name="new-a")
    (new,) = again.wait_for("new-a", timeout=60)
    assert new["status"]["version"] == 1
    board = wait_for(lambda: again.get()["status"].get("leaderboard"), what="the new board")
    assert [row["submission"] for row in board] == ["new-a"]


def test_a_holdout_that_appears_later_is_picked_up_without_a_spec_edit(cluster, custom_objects):
    custom_objects.create_namespaced_custom_object(
        *PG, iris_playground("later", "s3://podium/holdouts/later/features.csv", "s3://podium/holdouts/later/labels.csv"))
    wait_for(lambda: _condition(custom_objects.get_namespaced_custom_object(*PG, "later")), what="Ready condition")
    assert _condition(custom_objects.get_namespaced_custom_object(*PG, "later"))["status"] == "False"
    _, X_test, _, y_test = iris_split()
    upload_holdout(X_test, y_test, "s3://podium/holdouts/later")
    ready = wait_for(lambda: (c := _condition(custom_objects.get_namespaced_custom_object(*PG, "later")))
                     and c["status"] == "True" and c, timeout=60, what="Ready after the upload")
    assert ready["reason"] == "Validated"
    assert custom_objects.get_namespaced_custom_object(*PG, "later")["metadata"]["generation"] == 1


def test_a_changed_holdout_source_is_reported_and_never_used(cluster, custom_objects, core):
    cluster.stop_operator()
    cluster.start_operator({"PODIUM_HOLDOUT_CHECK_SECONDS": "1"})
    playground, y_test = _open(custom_objects, "moved", "s3://podium/holdouts/moved")
    in_sync = wait_for(lambda: _condition(playground.get(), "HoldoutInSync"), what="HoldoutInSync")
    assert in_sync["status"] == "True", in_sync
    snapshot = playground.get()["status"]["holdout"]
    _, X_test, _, y_other = iris_split(seed=5)  # other rows under the same URIs
    upload_holdout(X_test, y_other, "s3://podium/holdouts/moved")
    changed = wait_for(lambda: (c := _condition(playground.get(), "HoldoutInSync")) and c["status"] == "False" and c,
                       timeout=60, what="the changed source reported")
    assert changed["reason"] == "HoldoutSourceChanged" and "snapshot" in changed["message"]
    assert wait_for(lambda: "HoldoutSourceChanged" in _events(core, "moved") or None, what="a Warning Event")
    assert playground.get()["status"]["holdout"] == snapshot
    assert _condition(playground.get())["status"] == "True"  # still scores, with the snapshot
    playground.submit_predictions(y_test, name="still-snapshot")
    (sub,) = playground.wait_for("still-snapshot", timeout=60)
    assert sub["status"]["score"] == 1.0  # scored against the snapshot's labels, not the new ones


def test_the_deadline_closing_a_competition_posts_an_event(cluster, custom_objects, core):
    _open(custom_objects, "dated", "s3://podium/holdouts/dated", competition={"deadline": "2020-01-01T00:00:00Z"})
    assert wait_for(lambda: "CompetitionClosed" in _events(core, "dated") or None, what="the closing Event")
    assert "private leaderboard" in _events(core, "dated")["CompetitionClosed"]


def test_custom_metadata_scalars_are_leaderboard_columns(cluster, custom_objects):
    playground, y_test = _open(custom_objects, "meta", "s3://podium/holdouts/meta")
    tags = {"lr": 0.1, "epochs": 3, "augmented": True, "note": "baseline"}
    playground.submit_predictions(y_test, name="tagged", metadata=tags)
    (sub,) = playground.wait_for("tagged", timeout=60)
    assert sub["status"]["phase"] == "Evaluated", sub["status"]
    row = wait_for(lambda: (playground.get()["status"].get("leaderboard") or [None])[0], what="the row")
    assert row["customMetadata"] == tags
    assert playground.get_leaderboard()[["lr", "epochs", "augmented", "note"]].iloc[0].tolist() == [
        0.1, 3, True, "baseline"]
    # Shown as recorded at admission: changing it takes a new Submission; a non-scalar is refused at once.
    with pytest.raises(ApiException) as raised:
        custom_objects.patch_namespaced_custom_object(*SUB, "tagged", {"spec": {"metadata": {"lr": 0.2}}})
    assert raised.value.status == 422 and "metadata" in raised.value.body
    body = {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission", "metadata": {"name": "nested"},
            "spec": {"playground": "meta", "predictions": {"uri": sub["spec"]["predictions"]["uri"]},
                     "metadata": {"bad": {"x": 1}}}}
    with pytest.raises(ApiException) as raised:
        custom_objects.create_namespaced_custom_object(*SUB, body)
    assert raised.value.status == 422 and "spec.metadata" in raised.value.body and "scalar" in raised.value.body
