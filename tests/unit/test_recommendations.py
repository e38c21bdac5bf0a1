"""Training admission, profile Jobs and recommendations (pure): what a training Submission may ask, and what
each Playground is proposed from the records of the playgrounds most like it."""

from __future__ import annotations

from datetime import UTC, datetime

import kubernetes_validate
import pytest

from podium.api.deployment import TargetRef
from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium_operator.reconcile.deployment import resolve
from podium_operator.reconcile.recommendations import (
    Candidate,
    data_source,
    profile_job,
    read_metafeatures,
    recommendations,
)
from podium_operator.reconcile.records import SubmissionRecord
from podium_operator.reconcile.submission import admission_problem, reference_problem

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TRAIN = {"features": "s3://podium/playgrounds/ns/pg/train-x.csv", "labels": "s3://podium/playgrounds/ns/pg/train-y.csv"}


def pg(task: str = "classification", metric: str | None = None, training_data: bool = True) -> PlaygroundSpec:
    spec = {"task": task, "holdout": {"features": "f.csv", "labels": "l.csv"},
            "primaryMetric": metric or ("accuracy" if task == "classification" else "rmse")}
    if task == "classification":
        spec["classLabels"] = ["a", "b"]
    if training_data:
        spec["trainingData"] = TRAIN
    return PlaygroundSpec.model_validate(spec)


def training(**fields) -> SubmissionSpec:
    return SubmissionSpec.model_validate({"playground": "pg", "training": {"algorithm": "maml", **fields}})


def admit(spec: SubmissionSpec, playground: PlaygroundSpec):
    return admission_problem(spec, playground, playground_closed=False, submitter="ada", submitted_today=0, now=NOW)


def test_a_training_submission_is_admitted_when_it_has_data_and_fits_the_task():
    assert admit(training(), pg()) is None
    assert admit(training(hyperparameters={"metaDataset": "sinusoid"}), pg("regression")) is None


def test_no_training_data_anywhere_is_refused_naming_the_field():
    problem = admit(training(), pg(training_data=False))
    assert problem is not None and problem.reason == "NoTrainingData" and problem.message.startswith("training.data:")
    own = training(data={"features": "s3://podium/uploads/ns/pg/ada/x.csv", "labels": "s3://podium/uploads/ns/pg/ada/y.csv"})
    assert admit(own, pg(training_data=False)) is None


@pytest.mark.parametrize(("task", "dataset"), [("regression", "rotated-digits"), ("classification", "sinusoid")])
def test_a_meta_data_set_of_the_other_task_is_refused(task, dataset):
    problem = admit(training(hyperparameters={"metaDataset": dataset}), pg(task))
    assert problem is not None and "hyperparameters.metaDataset" in problem.message


def test_training_data_a_participant_names_must_be_their_own_upload():
    foreign = training(data={"features": "s3://podium/podium-private/ns/pg/holdout/features.csv",
                             "labels": "s3://podium/uploads/ns/pg/ada/y.csv"})
    problem = reference_problem(foreign, "s3://podium/uploads/ns/pg/ada/")
    assert problem is not None and problem.reason == "ForeignReference"
    assert problem.message.startswith("training.data.features:")
    assert reference_problem(training(), "s3://podium/uploads/ns/pg/ada/") is None  # the playground's own data


def _record(version: int, score: float | None, *, phase="Evaluated", config=None, playground="pg") -> SubmissionRecord:
    return SubmissionRecord(submission=f"s{version}", uid=f"u{version}", playground=playground, submitter="ada",
                            phase=phase, version=version, score=score,
                            training=config if config is not None else {"algorithm": "maml",
                                                                        "hyperparameters": {"kShot": version}})


def _candidate(name, features, records=(), task="classification", metric=None) -> Candidate:
    return Candidate(name=name, spec=pg(task, metric), metafeatures=features, records=list(records))


def test_the_nearest_playgrounds_best_training_configuration_comes_first():
    near = _candidate("near", {"rows": 100.0, "classes": 3.0}, [_record(1, 0.7), _record(2, 0.9)])
    far = _candidate("far", {"rows": 5000.0, "classes": 30.0}, [_record(3, 0.99)])
    target = _candidate("new", {"rows": 110.0, "classes": 3.0})
    rows = recommendations(target, [target, near, far])
    assert [(r["sourcePlayground"], r["version"]) for r in rows] == [("near", 2), ("far", 3), ("near", 1)]
    assert rows[0]["training"] == {"algorithm": "maml", "hyperparameters": {"kShot": 2}}
    assert rows[0]["rank"] == 1 and rows[0]["score"] == 0.9 and rows[0]["metric"] == "accuracy"


def test_a_minimised_metric_ranks_the_lowest_error_first_and_shows_it_as_it_was():
    peer = _candidate("peer", {"rows": 1.0}, [_record(1, 3.0), _record(2, 1.5)], task="regression")
    rows = recommendations(_candidate("new", {"rows": 1.0}, task="regression"), [peer])
    assert [(r["version"], r["score"]) for r in rows] == [(2, 1.5), (1, 3.0)]


def test_only_evaluated_training_records_of_the_same_task_are_proposed():
    records = [_record(1, 0.8, phase="Failed"), _record(2, None), _record(3, 0.5, config={})]
    other_task = _candidate("reg", {"rows": 1.0}, [_record(4, 0.1)], task="regression")
    assert recommendations(_candidate("new", {"rows": 1.0}), [_candidate("p", {"rows": 1.0}, records), other_task]) == []


@pytest.mark.parametrize("data", [b'{"metafeatures": {"a": NaN}}', b"[]", b'{"metafeatures": [1]}', b"x" * 300000,
                                  b'{"metafeatures": {' + b",".join(b'"k%d": 1' % i for i in range(1001)) + b"}}"])
def test_meta_features_a_job_wrote_are_read_within_limits(data):
    with pytest.raises(ValueError, match="meta-features"):
        read_metafeatures(data)


def test_meta_features_keep_finite_numbers_only():
    assert read_metafeatures(b'{"metafeatures": {"a": 1, "b": 2.5, "c": "x", "d": true, "e": null}}') == {"a": 1.0, "b": 2.5}


@pytest.mark.parametrize("version", ["1.31", "1.33"])
def test_the_profile_job_is_a_valid_trusted_job(version):
    playground = {"apiVersion": "podium.dev/v1alpha1", "kind": "Playground",
                  "metadata": {"name": "iris", "namespace": "team", "uid": "u1"}}
    source = data_source(pg())
    assert source is not None and data_source(pg(training_data=False)) is None
    job = profile_job(playground, task="classification", features_url="https://s3/x?sig", labels_url="https://s3/y?sig",
                      out_url="https://s3/out?sig", image="ghcr.io/podium-dev/trainer:0.1.0", source=source)
    kubernetes_validate.validate(job, version, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and "envFrom" not in pod["containers"][0]
    assert pod["containers"][0]["command"][:3] == ["python", "-m", "podium.training.profile"]
    assert job["metadata"]["name"] == f"iris-profile-{source[:8]}"


def test_a_trained_model_is_served_from_the_artifact_its_record_names():
    playground = {"metadata": {"name": "pg", "uid": "pg1"}, "spec": {"task": "classification", "classLabels": ["a", "b"]}}
    record = _record(1, 0.9).model_copy(update={"playground_uid": "pg1",
                                                "model_uri": "s3://podium/podium-private/ns/pg/pg1/training/u1/model.tar.gz"})
    submissions = {"s1": {"metadata": {"name": "s1", "uid": "u1"}, "spec": {"training": {"algorithm": "maml"}}}}
    artifact = resolve(TargetRef(version=1), field="spec.target", playground=playground, records=[record],
                       submissions=submissions)
    assert getattr(artifact, "storage_uri", None) == record.model_uri


def test_a_forged_training_progress_is_rewritten_from_the_record_once_trained():
    from podium_operator.reconcile.records import status_sync_patch

    shown = {"iteration": 4, "iterations": 4, "loss": 1.2, "validation": 0.4, "progress": "iter 4/4 loss 1.2 val 0.4"}
    record = _record(1, 0.5).model_copy(update={"progress": shown})
    forged = {"training": {**shown, "validation": 0.99, "progress": "iter 4/4 val 0.99", "best": {"x": 1}}}
    patch = status_sync_patch(forged, record)
    assert patch["training"] == {**shown, "best": None}  # merge patch: the forged extra key goes too
    training_now = _record(2, None, phase="Training")  # still training: the live report is not the record's
    assert "training" not in status_sync_patch({"training": shown}, training_now)
