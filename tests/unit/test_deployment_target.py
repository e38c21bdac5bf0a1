"""Which submission a ModelDeployment may serve: only Evaluated models of the same Playground, from records."""

from __future__ import annotations

from typing import Any

import pytest

from podium.api.deployment import TargetRef
from podium_operator.reconcile.deployment import Refusal, resolve
from podium_operator.reconcile.inference_service import Artifact
from podium_operator.reconcile.records import SubmissionRecord

PLAYGROUND = {"metadata": {"name": "iris", "uid": "pg-1"},
              "spec": {"task": "classification", "classLabels": ["setosa", "versicolor", "virginica"]}}


def record(name: str, version: int, phase: str = "Evaluated", playground_uid: str = "pg-1") -> SubmissionRecord:
    return SubmissionRecord(submission=name, uid=f"uid-{name}", playground="iris", playground_uid=playground_uid,
                            submitter="alice", phase=phase, version=version)  # type: ignore[arg-type]


def submission(name: str, model: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = {"playground": "iris", "model": model} if model is not None else {"playground": "iris",
                                                                           "predictions": {"uri": "s3://p/x.csv"}}
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": spec}


RECORDS = [record("good", 1), record("pending", 2, "Evaluating"), record("preds", 3), record("old", 4, playground_uid="pg-0"),
           record("split", 5), record("file", 6)]
SUBMISSIONS = {"good": submission("good", {"uri": "s3://podium/uploads/a.tar.gz"}),
               "pending": submission("pending", {"uri": "s3://podium/uploads/b.tar.gz"}),
               "preds": submission("preds"),
               "old": submission("old", {"uri": "s3://podium/uploads/c.tar.gz"}),
               "split": submission("split", {"uri": "s3://podium/uploads/d", "preprocessorUri": "s3://podium/p"}),
               "file": submission("file", {"uri": "file:///tmp/model"})}


def target(**ref: Any) -> Artifact | Refusal:
    return resolve(TargetRef(**ref), field="spec", playground=PLAYGROUND, records=RECORDS, submissions=SUBMISSIONS)


def test_by_version_and_by_name_give_the_same_artifact() -> None:
    by_version, by_name = target(version=1), target(submission="good")
    assert by_version == by_name == Artifact("good", 1, "s3://podium/uploads/a.tar.gz", "classification",
                                             ("setosa", "versicolor", "virginica"))


@pytest.mark.parametrize(("ref", "reason", "words"), [
    ({"version": 9}, "SubmissionNotFound", "spec.version"),
    ({"submission": "nope"}, "SubmissionNotFound", "spec.submission"),
    ({"version": 2}, "NotEvaluated", "Evaluating"),
    ({"version": 3}, "NotDeployable", "predictions"),
    ({"version": 4}, "SubmissionNotFound", "leaderboard version 4"),  # a record of an earlier same-named playground
    ({"submission": "old"}, "SubmissionNotFound", "not a submission of playground iris"),
    ({"version": 5}, "NotDeployable", "preprocessor"),
    ({"version": 6}, "NotDeployable", "s3://"),
])
def test_refusals_name_the_field_and_the_fix(ref: dict[str, Any], reason: str, words: str) -> None:
    refusal = target(**ref)
    assert isinstance(refusal, Refusal) and refusal.reason == reason and words in refusal.message


def test_a_forged_status_does_not_make_a_submission_deployable() -> None:
    forged = {**SUBMISSIONS["pending"], "status": {"phase": "Evaluated", "version": 2}}
    refusal = resolve(TargetRef(version=2), field="spec", playground=PLAYGROUND, records=RECORDS,
                      submissions={**SUBMISSIONS, "pending": forged})
    assert isinstance(refusal, Refusal) and refusal.reason == "NotEvaluated"


def test_a_recreated_submission_is_not_the_evaluated_one() -> None:
    recreated = {**SUBMISSIONS["good"], "metadata": {"name": "good", "uid": "uid-other"}}
    refusal = resolve(TargetRef(version=1), field="spec", playground=PLAYGROUND, records=RECORDS,
                      submissions={**SUBMISSIONS, "good": recreated})
    assert isinstance(refusal, Refusal) and "no longer exists" in refusal.message


def test_no_playground() -> None:
    refusal = resolve(TargetRef(version=1), field="spec", playground=None, records=RECORDS, submissions=SUBMISSIONS)
    assert isinstance(refusal, Refusal) and refusal.reason == "PlaygroundNotFound"


def test_the_api_server_keeps_a_deployments_playground_and_one_target():
    from podium.api import MODEL_DEPLOYMENT, cel
    from podium.api.crdgen import crd_manifest

    schema = crd_manifest(MODEL_DEPLOYMENT)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    old = {"apiVersion": "podium.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "iris"},
           "spec": {"playground": "iris", "version": 1}}
    assert cel.violations({**old, "spec": {"playground": "iris", "version": 2}}, schema, old) == []  # a swap
    moved = cel.violations({**old, "spec": {"playground": "wine", "version": 1}}, schema, old)
    assert [field for field, _ in moved] == ["spec.playground"] and "immutable" in moved[0][1]
    both = cel.violations({**old, "spec": {"playground": "iris", "version": 1, "shadow": {"version": 2,
                                                                                        "submission": "x"}}},
                          schema, old)
    assert [field for field, _ in both] == ["spec.shadow.submission"]
    assert cel.violations({**old, "spec": {"playground": "iris", "version": 1, "rollout": {"steps": [10, 10]}}},
                          schema, None)[0][0] == "spec.rollout.steps"
