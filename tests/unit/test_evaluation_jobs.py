"""Evaluation Job manifests: valid Kubernetes objects, and the trust boundary holds in what they say."""

from __future__ import annotations

import dataclasses
import json

import kubernetes_validate
import pytest

from podium.evaluation.wire import PredictArgs, ScoreArgs, StageArgs
from podium_operator.reconcile.evaluation_jobs import (
    EvaluationPlan,
    evaluation_job,
    evaluation_volume,
    job_name,
    object_access,
    sandbox_network_policy,
)
from podium_operator.reconcile.names import child_name

SUBMISSION = {
    "apiVersion": "podium.dev/v1alpha1",
    "kind": "Submission",
    "metadata": {"name": "iris-logreg", "namespace": "team", "uid": "0b7c-1"},
}


def plan(**overrides) -> EvaluationPlan:
    values = dict(
        namespace="team", submission=SUBMISSION, playground="iris", version=3, task="classification",
        class_labels=("setosa", "versicolor", "virginica"), features_uri="s3://podium/iris/features.csv",
        labels_uri="s3://podium/iris/labels.csv", split_uri="s3://podium/podium-private/team/iris/split.json",
        results_uri="s3://podium/podium-results/team/iris/iris-logreg.json",
        private_uri="s3://podium/podium-private/team/iris/scores/iris-logreg.json",
        model_uri="s3://podium/submissions/iris-logreg.tar.gz", predictions_uri=None,
        image="ghcr.io/podium-dev/evaluator:0.1.0", cpu="1", memory="2Gi", timeout_seconds=300,
    )
    return EvaluationPlan(**(values | overrides))


def _all_manifests(p: EvaluationPlan):
    return [evaluation_job(p, step) for step in p.steps()] + [evaluation_volume(p), sandbox_network_policy("team")]


@pytest.mark.parametrize("version", ["1.31", "1.33"])
def test_every_manifest_validates_against_kubernetes_schemas(version):
    for manifest in _all_manifests(plan()) + _all_manifests(plan(model_uri=None, predictions_uri="s3://p/x.npz")):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_model_submission_has_three_steps_predictions_only_one():
    assert plan().steps() == ("stage", "predict", "score")
    assert plan(model_uri=None, predictions_uri="s3://p/x.npz").steps() == ("score",)


def test_predict_step_is_sandboxed():
    job = evaluation_job(plan(), "predict")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert container["env"] == []  # no credentials of any kind
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert job["spec"]["activeDeadlineSeconds"] == 300 and job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["metadata"]["labels"]["podium.dev/sandbox"] == "true"
    command = " ".join(container["command"])
    assert "labels" not in command and "s3://" not in command  # only staged features, never the labels


def test_network_policy_selects_exactly_the_sandboxed_pods():
    policy = sandbox_network_policy("team")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    predict_labels = evaluation_job(plan(), "predict")["spec"]["template"]["metadata"]["labels"]
    score_labels = evaluation_job(plan(), "score")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= predict_labels.items()
    assert not selector.items() <= score_labels.items()
    assert policy["spec"]["egress"] == [] and "Egress" in policy["spec"]["policyTypes"]


def test_no_step_gets_object_store_credentials_only_a_url_per_object_it_needs():
    signed = plan()
    signed = dataclasses.replace(signed, urls=tuple(
        (f"{method} {uri}", f"https://store/{method}/{uri.removeprefix('s3://')}?X-Amz-Signature=x")
        for step in signed.steps() for method, uri in object_access(signed, step)))
    for step in signed.steps():
        container = evaluation_job(signed, step)["spec"]["template"]["spec"]["containers"][0]
        assert container["env"] == [] and "envFrom" not in container
        named = [arg for arg in container["command"] if "://" in arg]
        assert all(arg.startswith("https://store/") for arg in named), (step, named)  # no bare s3:// URI
        wanted = {f"https://store/{method}/{uri.removeprefix('s3://')}?X-Amz-Signature=x"
                  for method, uri in object_access(signed, step)}
        assert set(named) == wanted, step
    assert object_access(signed, "predict") == []
    assert [a for a in object_access(signed, "score") if a[0] == "PUT"] == [
        ("PUT", signed.results_uri), ("PUT", signed.private_uri)]
    assert ("GET", signed.labels_uri) not in object_access(signed, "stage")  # labels never reach stage


def test_score_command_carries_labels_split_and_private_destination():
    command = evaluation_job(plan(), "score")["spec"]["template"]["spec"]["containers"][0]["command"]
    arguments = dict(zip(command[3::2], command[4::2], strict=False))
    assert arguments["--labels"] == "s3://podium/iris/labels.csv"
    assert arguments["--split"].endswith("split.json")
    assert arguments["--private"].startswith("s3://podium/podium-private/")
    assert json.loads(arguments["--class-labels"]) == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("p", [plan(), plan(preprocessor_uri="s3://podium/pre.tar.gz"),
                               plan(model_uri=None, predictions_uri="s3://p/x.npz", split_uri=None)])
def test_every_command_is_what_its_step_parses(p: EvaluationPlan) -> None:
    modules = {"stage": ("podium.evaluation.stage", StageArgs), "predict": ("podium.evaluation.predict", PredictArgs),
               "score": ("podium.evaluation.score", ScoreArgs)}
    for step in p.steps():
        (container,) = evaluation_job(p, step)["spec"]["template"]["spec"]["containers"]
        python, flag, module, *argv = container["command"]
        assert (python, flag, module) == ("python", "-m", modules[step][0])
        assert modules[step][1].from_argv(argv).to_argv() == argv
    score = ScoreArgs.from_argv(evaluation_job(p, "score")["spec"]["template"]["spec"]["containers"][0]["command"][3:])
    assert (score.metadata is None) == (p.model_uri is None)
    assert score.predictions == (p.predictions_uri or "/data/out/predictions.npz")


def test_children_are_owned_and_deterministically_named():
    for manifest in (evaluation_job(plan(), "stage"), evaluation_volume(plan())):
        (owner,) = manifest["metadata"]["ownerReferences"]
        assert owner["uid"] == "0b7c-1" and owner["controller"] is True
    assert evaluation_job(plan(), "score")["metadata"]["name"] == job_name("iris-logreg", "score") == "iris-logreg-score"


def test_long_names_are_shortened_stably_within_63_characters():
    long = "x" * 80
    assert len(child_name(long, "predict")) <= 63
    assert child_name(long, "predict") == child_name(long, "predict") != child_name("y" * 80, "predict")
    assert child_name(long, "predict").endswith("-predict")


def test_separate_preprocessor_is_staged_by_the_trusted_step_and_used_by_predict():
    def command(p: EvaluationPlan, step: str) -> list[str]:
        (container,) = evaluation_job(p, step)["spec"]["template"]["spec"]["containers"]
        return container["command"] + container.get("args", [])

    with_pre = plan(preprocessor_uri="s3://podium/preprocessors/team/iris/scale.tar.gz")
    stage, predict = command(with_pre, "stage"), command(with_pre, "predict")
    assert stage[stage.index("--preprocessor") + 1] == "s3://podium/preprocessors/team/iris/scale.tar.gz"
    assert predict[predict.index("--preprocessor") + 1] == "/data/preprocessor"  # on the volume, no network
    assert "--preprocessor" not in command(plan(), "stage") + command(plan(), "predict")


def test_only_the_stage_step_writes_the_volume_and_predict_only_its_out_directory():
    mounts = {step: evaluation_job(plan(), step)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
              for step in ("stage", "predict", "score")}
    data = {step: [m for m in ms if m["name"] == "data"] for step, ms in mounts.items()}
    assert data["stage"] == [{"name": "data", "mountPath": "/data"}]
    assert data["score"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    # out/ is a mount point of its own: predict cannot swap it for a link the score step would follow.
    assert data["predict"] == [{"name": "data", "mountPath": "/data", "readOnly": True},
                               {"name": "data", "mountPath": "/data/out", "subPath": "out"}]
