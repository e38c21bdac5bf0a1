"""Training Job manifests: valid Kubernetes objects, GPU placement by default, the trust boundary of a trusted step."""

from __future__ import annotations

import dataclasses
import datetime

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.api.training import DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS, TrainingSpec
from podium.training.wire import ProgressReport, TrainArgs
from podium_operator.reconcile.training_jobs import (
    TrainingPlan,
    object_access,
    progress_status,
    train_args,
    training_job,
    training_job_name,
)

SUBMISSION = {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission",
              "metadata": {"name": "digits-maml", "namespace": "team", "uid": "9f1-2"}}
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def plan(training: dict | None = None, **overrides) -> TrainingPlan:
    values = dict(
        namespace="team", submission=SUBMISSION, playground="digits", task="classification",
        class_labels=("a", "b", "c", "d", "e"), metric="accuracy",
        training=TrainingSpec.model_validate(training or {"algorithm": "maml"}),
        features_uri="s3://podium/playgrounds/team/digits/train-x.csv",
        labels_uri="s3://podium/playgrounds/team/digits/train-y.csv",
        prefix="s3://podium/podium-private/team/digits/u1/training/9f1-2/", image="ghcr.io/podium-dev/trainer:0.1.0",
        node_selector=dict(DEFAULT_GPU_NODE_SELECTOR), tolerations=tuple(DEFAULT_GPU_TOLERATIONS),
    )
    return TrainingPlan(**(values | overrides))


def _pod(p: TrainingPlan) -> dict:
    return training_job(p)["spec"]["template"]["spec"]


@pytest.mark.parametrize("version", ["1.31", "1.33"])
@pytest.mark.parametrize("case", [
    {}, {"gpu_pool": False}, {"training": {"algorithm": "tpe-search", "hyperparameters": {"trials": 5}}},
    {"training": {"algorithm": "reptile", "resources": {"gpu": 2}, "nodeSelector": {"pool": "v100"},
                  "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}},
])
def test_every_manifest_validates_against_kubernetes_schemas(version, case):
    kubernetes_validate.validate(training_job(plan(**case)), version, strict=True)


def test_meta_learning_lands_on_the_p100_pool_with_one_gpu_by_default():
    pod = _pod(plan())
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-p100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert TrainArgs.from_argv(container["command"][3:]).device == "cuda"


def test_the_spec_overrides_placement_and_gpu_count():
    pod = _pod(plan({"algorithm": "protonet", "resources": {"gpu": 2}, "nodeSelector": {"pool": "a100"},
                     "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]}))
    assert pod["nodeSelector"] == {"pool": "a100"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


@pytest.mark.parametrize("case", [{"gpu_pool": False}, {"training": {"algorithm": "tpe-search"}},
                                  {"training": {"algorithm": "maml", "resources": {"gpu": 0}}}])
def test_cpu_training_asks_for_no_gpu_and_no_gpu_node(case):
    pod = _pod(plan(**case))
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert TrainArgs.from_argv(pod["containers"][0]["command"][3:]).device == "cpu"


def test_the_job_is_a_trusted_step_with_no_credentials_only_presigned_urls():
    p = plan()
    urls = tuple((f"{method} {uri}", f"https://s3.example/{i}?X-Amz-Signature=s") for i, (method, uri)
                 in enumerate(object_access(p)))
    job = training_job(dataclasses.replace(p, urls=urls))
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not any("SECRET" in env["name"] or "AWS" in env["name"] for env in container["env"])
    assert "envFrom" not in container
    args = TrainArgs.from_argv(container["command"][3:])
    signed = {url for _, url in urls}
    for value in (args.features, args.labels, args.artifact, args.progress, args.history, args.checkpoint,
                  args.checkpoint_put, args.initialisation):
        assert value in signed  # every object it touches is one presigned URL, nothing else
    assert {m for m, _ in object_access(p)} == {"GET", "PUT"}
    assert all(uri.startswith(p.prefix) for m, uri in object_access(p) if m == "PUT")  # writes only its own keys


def test_bad_input_fails_the_job_at_once_a_lost_pod_is_replaced():
    spec = training_job(plan())["spec"]
    assert spec["backoffLimit"] >= 1
    (fail, ignore) = spec["podFailurePolicy"]["rules"]
    assert fail["action"] == "FailJob" and 1 in fail["onExitCodes"]["values"]
    assert ignore["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    assert spec["activeDeadlineSeconds"] == 3600
    assert training_job(plan())["metadata"]["name"] == training_job_name("digits-maml") == "digits-maml-train"


def test_hyperparameters_travel_as_validated_json():
    p = plan({"algorithm": "maml", "hyperparameters": {"kShot": 5, "innerSteps": 1}})
    args = train_args(p)
    assert args.settings() == {"innerSteps": 1, "kShot": 5}


@pytest.mark.parametrize(("hyperparameters", "field"), [
    ({"kShot": 0}, "hyperparameters.kShot"), ({"innerLr": "fast"}, "hyperparameters.innerLr"),
    ({"iterations": 10**9}, "hyperparameters.iterations"), ({"metaDataset": "omniglot"}, "hyperparameters.metaDataset"),
    ({"kshot": 1}, "hyperparameters.kshot"),
])
def test_bad_hyperparameters_are_refused_naming_the_field(hyperparameters, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        TrainingSpec.model_validate({"algorithm": "maml", "hyperparameters": hyperparameters})


def test_progress_status_is_bounded_and_says_one_line():
    report = ProgressReport.from_json(b'{"state": "training", "iteration": 200, "iterations": 2000, "loss": 0.41,'
                                      b' "validation": 0.83, "algorithm": "maml", "device": "cpu"}')
    view = progress_status(report, now=NOW)
    assert view["progress"] == "iter 200/2000 loss 0.41 val 0.83"
    assert view["updatedAt"] == "2026-12-01T12:00:00Z"


@pytest.mark.parametrize("data", [b'{"loss": NaN}', b'{"loss": 1e999}', b"[" * 200 + b"]" * 200,
                                  b'{"iteration": -1}', b"x" * 70000, b'{"message": "' + b"y" * 5000 + b'"}'])
def test_progress_reports_that_could_break_a_status_are_refused(data):
    with pytest.raises(ValueError, match="progress report"):
        ProgressReport.from_json(data)


@given(st.dictionaries(st.text(max_size=200), st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=400),
    st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.lists(st.integers()))),
    st.lists(st.integers())), max_size=60))
def test_the_best_configuration_shown_is_bounded(best):
    view = progress_status(ProgressReport(best=best), now=NOW)
    shown = view["best"]
    assert len(shown) <= 40
    for key, value in shown.items():
        assert len(key) <= 128
        assert not isinstance(value, list)
        if isinstance(value, dict):
            assert all(not isinstance(v, list | dict) for v in value.values())
        elif isinstance(value, str):
            assert len(value) <= 256
