"""Manifests for evaluating one Submission (pure builders).

A model submission is evaluated by three Jobs sharing one PersistentVolumeClaim, because a
NetworkPolicy applies to a whole pod and the untrusted step must have no network at all:

1. ``stage`` (trusted): downloads the artifact and the holdout *features* into the volume.
2. ``predict`` (untrusted): no network, no service-account token, no credentials, no labels,
   non-root, read-only root filesystem, all capabilities dropped, seccomp RuntimeDefault.
3. ``score`` (trusted): reads the predictions, the labels and the split; stores public and
   private scores in the object store and a short public summary as its termination message.

A predictions-only submission needs the ``score`` Job alone (it reads the predictions by URI).
Each container's command is ``python -m MODULE`` plus its :mod:`podium.evaluation.wire` arguments, the
same models the steps parse them with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from podium.evaluation.wire import (
    DATA,
    METADATA_PATH,
    MODEL_DIR,
    OUT_DIR,
    PREDICTIONS_PATH,
    PREPROCESSOR_DIR,
    STAGED_OUT,
    PredictArgs,
    ScoreArgs,
    StageArgs,
    StepArgs,
    staged_features_path,
)
from podium_operator.reconcile.names import (
    MANAGED_BY,
    PLAYGROUND_LABEL,
    SANDBOX_LABEL,
    STEP_LABEL,
    SUBMISSION_LABEL,
    child_name,
    owner_reference,
)

Step = Literal["stage", "predict", "score"]
NONROOT_UID = 65532
STEP_MODULES: dict[Step, str] = {
    "stage": "podium.evaluation.stage",
    "predict": "podium.evaluation.predict",
    "score": "podium.evaluation.score",
}


@dataclass(frozen=True)
class EvaluationPlan:
    """Everything the builders need; derived from the Submission, its Playground and the config."""

    namespace: str
    submission: dict[str, Any]  # the Submission object (for name, uid, owner reference)
    playground: str
    version: int
    task: str
    class_labels: tuple[str, ...]
    features_uri: str
    labels_uri: str
    split_uri: str | None
    results_uri: str  # public result.json, read by the operator
    private_uri: str  # private scores, never readable by participants
    model_uri: str | None
    predictions_uri: str | None
    image: str
    cpu: str
    memory: str
    timeout_seconds: int
    volume_size: str = "2Gi"
    preprocessor_uri: str | None = None  # a preprocessor submitted apart from the model
    # The trusted steps get no object-store credentials: only a presigned URL per object they read or
    # write (by "METHOD uri", see object_access), so they can reach nothing else.
    urls: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return str(self.submission["metadata"]["name"])

    def steps(self) -> tuple[Step, ...]:
        return ("score",) if self.model_uri is None else ("stage", "predict", "score")

    def url(self, uri: str, method: str = "GET") -> str:
        """The presigned URL a Job is given for ``uri`` (the URI itself where none was signed)."""
        return dict(self.urls).get(f"{method} {uri}", uri)


def object_access(plan: EvaluationPlan, step: Step) -> list[tuple[str, str]]:
    """``(method, uri)`` of every object ``step`` reads or writes: exactly what the operator presigns for it."""
    if step == "stage":
        reads = [plan.model_uri, plan.preprocessor_uri, plan.features_uri]
        return [("GET", uri) for uri in reads if uri]
    if step == "predict":
        return []  # no network at all
    reads = [plan.predictions_uri, plan.labels_uri, plan.split_uri]
    return [("GET", uri) for uri in reads if uri] + [("PUT", plan.results_uri), ("PUT", plan.private_uri)]


def job_name(submission: str, step: Step) -> str:
    return child_name(submission, step)


def volume_name(submission: str) -> str:
    return child_name(submission, "eval")


def _labels(plan: EvaluationPlan, step: str) -> dict[str, str]:
    return {**MANAGED_BY, SUBMISSION_LABEL: plan.name, PLAYGROUND_LABEL: plan.playground, STEP_LABEL: step}


def _metadata(plan: EvaluationPlan, name: str, step: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": plan.namespace,
        "labels": _labels(plan, step),
        "ownerReferences": [owner_reference(plan.submission)],
    }


def _resources(plan: EvaluationPlan) -> dict[str, Any]:
    amounts = {"cpu": plan.cpu, "memory": plan.memory}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def restricted_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": NONROOT_UID,
        "runAsGroup": NONROOT_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def job_pod_spec(containers: list[dict[str, Any]], volumes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The pod of every Job Podium runs: never restarted in place, no service-account token (a trusted step's
    only access is presigned URLs), no service links, non-root, seccomp RuntimeDefault."""
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "fsGroup": NONROOT_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        **extra,
        "containers": containers,
        "volumes": volumes,
    }


def step_args(plan: EvaluationPlan, step: Step) -> StepArgs:
    """The arguments of ``step``'s container, as the step itself parses them."""
    if step == "stage":
        assert plan.model_uri is not None
        return StageArgs(artifact=plan.url(plan.model_uri), features=plan.url(plan.features_uri), dest=Path(DATA),
                         preprocessor=plan.url(plan.preprocessor_uri) if plan.preprocessor_uri else None)
    if step == "predict":
        return PredictArgs(artifact=Path(MODEL_DIR), features=Path(staged_features_path(plan.features_uri)),
                           out=Path(OUT_DIR), preprocessor=Path(PREPROCESSOR_DIR) if plan.preprocessor_uri else None)
    return ScoreArgs(
        predictions=plan.url(plan.predictions_uri) if plan.predictions_uri else PREDICTIONS_PATH,
        labels=plan.url(plan.labels_uri), task=plan.task,  # type: ignore[arg-type]
        class_labels=list(plan.class_labels), results=plan.url(plan.results_uri, "PUT"),
        private=plan.url(plan.private_uri, "PUT"), split=plan.url(plan.split_uri) if plan.split_uri else None,
        metadata=Path(METADATA_PATH) if plan.model_uri is not None else None,
    )


def _step_command(plan: EvaluationPlan, step: Step) -> list[str]:
    return ["python", "-m", STEP_MODULES[step], *step_args(plan, step).to_argv()]


def _data_mounts(step: Step) -> list[dict[str, Any]]:
    """Only the stage step writes the volume; the predict step writes only ``out/`` — a mount point, so it
    cannot replace the directory the score step reads with a link — and the score step writes nothing there."""
    if step == "stage":
        return [{"name": "data", "mountPath": DATA}]
    mounts: list[dict[str, Any]] = [{"name": "data", "mountPath": DATA, "readOnly": True}]
    if step == "predict":
        mounts.append({"name": "data", "mountPath": OUT_DIR, "subPath": STAGED_OUT})
    return mounts


def evaluation_job(plan: EvaluationPlan, step: Step) -> dict[str, Any]:
    untrusted = step == "predict"
    container: dict[str, Any] = {
        "name": step,
        "image": plan.image,
        "command": _step_command(plan, step),
        "resources": _resources(plan),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "env": [],  # no credentials, no settings: every object a step needs is a presigned URL in its args
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if plan.model_uri is not None:
        container["volumeMounts"] += _data_mounts(step)
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": volume_name(plan.name)}})
    pod_labels = _labels(plan, step) | ({SANDBOX_LABEL: "true"} if untrusted else {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(plan, job_name(plan.name, step), step),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": plan.timeout_seconds,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": job_pod_spec([container], volumes),
            },
        },
    }


def evaluation_volume(plan: EvaluationPlan) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(plan, volume_name(plan.name), "eval"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": plan.volume_size}}},
    }


def sandbox_network_policy(namespace: str) -> dict[str, Any]:
    """Deny all egress and ingress for untrusted pods (the chart ships the same policy)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "podium-deny-predict-egress", "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "podSelector": {"matchLabels": {SANDBOX_LABEL: "true"}},
            "policyTypes": ["Egress", "Ingress"],
            "egress": [],
            "ingress": [],
        },
    }
