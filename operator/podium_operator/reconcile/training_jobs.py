"""The training Job of a training Submission (pure builders) and how its progress reads as status.

The Job runs Podium's own code (``python -m podium.training``, :mod:`podium.training.wire`), so it is a
trusted step like ``stage`` and ``score``: no credentials and no service-account token, only a presigned
URL per object it reads or writes; non-root, read-only root file system, all capabilities dropped. What a
participant controls (hyperparameters, the data it names) is validated by the operator before the Job
exists and read with limits inside it. On a GPU pool it asks for ``nvidia.com/gpu`` and lands on the
pool's nodes (P100-class by default); a pod that dies is replaced (``backoffLimit``) and resumes from the
last checkpoint, while exit code 1 (bad input) fails the Job at once (``podFailurePolicy``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from podium.api.meta import format_time
from podium.api.training import TrainingSpec
from podium.training.wire import ProgressReport, TrainArgs
from podium_operator.reconcile.evaluation_jobs import job_pod_spec, restricted_security
from podium_operator.reconcile.names import (
    MANAGED_BY,
    PLAYGROUND_LABEL,
    STEP_LABEL,
    SUBMISSION_LABEL,
    child_name,
    owner_reference,
)

TRAIN_MODULE = "podium.training"
GPU_RESOURCE = "nvidia.com/gpu"
RETRIES = 2  # pods replaced after a node loss or a crash; each resumes from the checkpoint
MAX_BEST_KEYS = 40


@dataclass(frozen=True)
class TrainingPlan:
    """Everything the builder needs: the Submission, its Playground's task and the operator's GPU pool."""

    namespace: str
    submission: dict[str, Any]
    playground: str
    task: str
    class_labels: tuple[str, ...]
    metric: str
    training: TrainingSpec
    features_uri: str
    labels_uri: str
    prefix: str  # the operator's own prefix for this Submission's training objects (see uris)
    image: str
    gpu_pool: bool = True
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    progress_seconds: float = 10.0
    urls: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return str(self.submission["metadata"]["name"])

    def uri(self, what: str) -> str:
        """``model.tar.gz``, ``initialisation.tar.gz``, ``progress.json``, ``checkpoint``, ``history.json``: keyed
        by the Submission's uid."""
        return f"{self.prefix}{what}"

    @property
    def gpus(self) -> int:
        """GPUs asked for: the spec's, else 1 for meta-learning on a cluster with a GPU pool, else 0."""
        if not self.gpu_pool:
            return 0
        wanted = self.training.resources.gpu
        return wanted if wanted is not None else (1 if self.training.meta_learning else 0)

    def url(self, uri: str, method: str = "GET") -> str:
        return dict(self.urls).get(f"{method} {uri}", uri)


def object_access(plan: TrainingPlan) -> list[tuple[str, str]]:
    """``(method, uri)`` of every object the Job reads or writes: exactly what the operator presigns for it."""
    access = [("GET", plan.features_uri), ("GET", plan.labels_uri), ("GET", plan.uri("checkpoint")),
              ("PUT", plan.uri("checkpoint")), ("PUT", plan.uri("model.tar.gz")), ("PUT", plan.uri("progress.json")),
              ("PUT", plan.uri("history.json"))]
    if plan.training.meta_learning:
        access.append(("PUT", plan.uri("initialisation.tar.gz")))
    return access


def training_job_name(submission: str) -> str:
    return child_name(submission, "train")


def train_args(plan: TrainingPlan) -> TrainArgs:
    return TrainArgs(
        algorithm=plan.training.algorithm, hyperparameters=json.dumps(plan.training.hyperparameters, sort_keys=True),
        task=plan.task, class_labels=list(plan.class_labels) or None, metric=plan.metric,  # type: ignore[arg-type]
        features=plan.url(plan.features_uri), labels=plan.url(plan.labels_uri),
        artifact=plan.url(plan.uri("model.tar.gz"), "PUT"), progress=plan.url(plan.uri("progress.json"), "PUT"),
        history=plan.url(plan.uri("history.json"), "PUT"), checkpoint=plan.url(plan.uri("checkpoint")),
        checkpoint_put=plan.url(plan.uri("checkpoint"), "PUT"), device="cuda" if plan.gpus else "cpu",
        initialisation=plan.url(plan.uri("initialisation.tar.gz"), "PUT") if plan.training.meta_learning else None,
        progress_seconds=plan.progress_seconds,
    )


def _resources(plan: TrainingPlan) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": plan.training.resources.cpu, "memory": plan.training.resources.memory}
    limits = dict(amounts)
    if plan.gpus:
        limits[GPU_RESOURCE] = str(plan.gpus)  # extended resources: a limit alone (requests default to it)
    return {"requests": amounts, "limits": limits}


def _placement(plan: TrainingPlan) -> dict[str, Any]:
    """The GPU pool's node selector and tolerations (the spec's own when given); none on CPU."""
    if not plan.gpus:
        return {}
    training = plan.training
    selector = training.node_selector if training.node_selector is not None else plan.node_selector
    tolerations = ([t.to_wire() for t in training.tolerations] if training.tolerations is not None
                   else [dict(t) for t in plan.tolerations])
    return {k: v for k, v in (("nodeSelector", dict(selector)), ("tolerations", tolerations)) if v}


def training_job(plan: TrainingPlan) -> dict[str, Any]:
    labels = {**MANAGED_BY, SUBMISSION_LABEL: plan.name, PLAYGROUND_LABEL: plan.playground, STEP_LABEL: "train"}
    name = training_job_name(plan.name)
    container = {
        "name": "train",
        "image": plan.image,
        "command": ["python", "-m", TRAIN_MODULE, *train_args(plan).to_argv()],
        "resources": _resources(plan),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        # No credentials: only where libraries may write (the root file system is read-only).
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"},
                {"name": "XDG_CACHE_HOME", "value": "/tmp/cache"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": plan.namespace, "labels": labels,
                     "ownerReferences": [owner_reference(plan.submission)]},
        "spec": {
            "backoffLimit": RETRIES,
            "activeDeadlineSeconds": plan.training.timeout_seconds,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": "train", "operator": "In", "values": [1, 2]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            ]},
            "template": {
                "metadata": {"labels": labels},
                "spec": job_pod_spec([container], [{"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}],
                                     **_placement(plan)),
            },
        },
    }


def _bounded_best(best: dict[str, Any] | None) -> dict[str, Any] | None:
    """The best configuration as a status may hold it: a few keys, scalars or one level of scalars."""
    if not isinstance(best, dict):
        return None

    def scalar(value: Any) -> bool:
        return value is None or isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 256)

    kept: dict[str, Any] = {}
    for key, value in list(best.items())[:MAX_BEST_KEYS]:
        if not isinstance(key, str) or len(key) > 128:
            continue
        if scalar(value):
            kept[key] = value
        elif isinstance(value, dict):
            kept[key] = {k: v for k, v in list(value.items())[:MAX_BEST_KEYS]
                         if isinstance(k, str) and len(k) <= 128 and scalar(v)}
    return kept


def progress_status(report: ProgressReport, *, now: Any) -> dict[str, Any]:
    """``status.training`` from a progress report (already strictly parsed)."""
    view = {
        "algorithm": report.algorithm, "device": report.device, "iteration": report.iteration,
        "iterations": report.iterations, "loss": report.loss, "validation": report.validation,
        "best": _bounded_best(report.best), "progress": report.line()[:200], "updatedAt": format_time(now),
    }
    return {k: v for k, v in view.items() if v is not None}
