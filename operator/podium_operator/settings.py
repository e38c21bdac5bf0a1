"""Operator configuration from the environment (set by the Helm chart or `podium local up`).

Read once, when the operator starts (:func:`OperatorConfig.from_env` in ``__main__``), never at import.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from podium.api import GROUP
from podium.api.training import DEFAULT_GPU_NODE_SELECTOR, DEFAULT_GPU_TOLERATIONS
from podium.uri import UPLOADS, upload_prefix

PREFIX = GROUP  # our annotations, finalizer and webhook configuration are named under the API group
FINALIZER = f"{PREFIX}/finalizer"


@dataclass(frozen=True)
class WebhookConfig:
    """The admission webhook that stamps each Submission with the user the API server authenticated.

    Enabled by ``PODIUM_WEBHOOK_HOST`` (the name the API server calls, e.g. the chart's Service). With
    ``PODIUM_WEBHOOK_CERT_DIR`` (``tls.crt``, ``tls.key``, optional ``ca.crt``, e.g. from cert-manager)
    those serve TLS; without it the operator makes a self-signed certificate at start-up. Either way the
    operator writes the MutatingWebhookConfiguration itself, with the matching CA bundle.
    """

    host: str | None = None
    port: int = 9443
    cert_dir: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_env(cls) -> WebhookConfig:
        return cls(
            host=os.environ.get("PODIUM_WEBHOOK_HOST") or None,
            port=int(os.environ.get("PODIUM_WEBHOOK_PORT", "9443")),
            cert_dir=os.environ.get("PODIUM_WEBHOOK_CERT_DIR") or None,
        )


@dataclass(frozen=True)
class OperatorConfig:
    namespace: str | None  # None watches all namespaces
    metrics_port: int | None  # None: no exporter; 0: any free port
    evaluator_image: str
    bucket: str
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    # How often a Ready Playground's holdout source is compared with the snapshot taken at Ready.
    holdout_check_seconds: float = 300.0
    # Where canary analysis reads live metrics (Prometheus' HTTP API); None: the predictors are scraped directly.
    prometheus_url: str | None = None
    # How often a ModelDeployment's rollout is looked at (steps are judged on the first tick past their interval).
    rollout_tick_seconds: float = 5.0
    trainer_image: str = "ghcr.io/podium-dev/trainer:0.1.0"
    # Training Jobs: whether the cluster has a GPU pool (else meta-learning trains on CPU) and how to land on it.
    gpu_pool: bool = True
    gpu_node_selector: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_GPU_NODE_SELECTOR))
    gpu_tolerations: tuple[dict[str, Any], ...] = tuple(DEFAULT_GPU_TOLERATIONS)
    # The training Job writes at most one progress report per this many seconds; the operator reads it as often.
    training_progress_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> OperatorConfig:
        return cls(
            namespace=os.environ.get("PODIUM_NAMESPACE") or None,
            metrics_port=int(os.environ["PODIUM_METRICS_PORT"]) if os.environ.get("PODIUM_METRICS_PORT") else None,
            evaluator_image=os.environ.get("PODIUM_EVALUATOR_IMAGE", "ghcr.io/podium-dev/evaluator:0.1.0"),
            bucket=os.environ.get("PODIUM_S3_BUCKET", "podium"),
            webhook=WebhookConfig.from_env(),
            holdout_check_seconds=float(os.environ.get("PODIUM_HOLDOUT_CHECK_SECONDS", "300")),
            prometheus_url=os.environ.get("PODIUM_PROMETHEUS_URL") or None,
            rollout_tick_seconds=float(os.environ.get("PODIUM_ROLLOUT_TICK_SECONDS", "5")),
            trainer_image=os.environ.get("PODIUM_TRAINER_IMAGE", "ghcr.io/podium-dev/trainer:0.1.0"),
            gpu_pool=os.environ.get("PODIUM_GPU_POOL", "true").lower() not in ("0", "false", "no"),
            gpu_node_selector=_json_env("PODIUM_GPU_NODE_SELECTOR", DEFAULT_GPU_NODE_SELECTOR),
            gpu_tolerations=tuple(_json_env("PODIUM_GPU_TOLERATIONS", DEFAULT_GPU_TOLERATIONS)),
            training_progress_seconds=float(os.environ.get("PODIUM_TRAINING_PROGRESS_SECONDS", "10")),
        )

    def namespace_private_prefix(self, namespace: str) -> str:
        """Only the operator and the trusted score step (via the Secret) can read below this prefix."""
        return f"s3://{self.bucket}/podium-private/{namespace}/"

    def private_prefix(self, namespace: str, playground: str, uid: str) -> str:
        """Everything the operator keeps for one Playground: keyed by its uid, so a re-created name starts clean."""
        return f"{self.namespace_private_prefix(namespace)}{playground}/{uid}"

    def private_scores_uri(self, namespace: str, playground: str, playground_uid: str, submission_uid: str) -> str:
        return f"{self.private_prefix(namespace, playground, playground_uid)}/scores/{submission_uid}.json"

    def upload_prefix(self, namespace: str, playground: str, submitter: str) -> str:
        """The only place a Submission by ``submitter`` may name objects from."""
        return upload_prefix(self.bucket, namespace, playground, submitter)

    def playground_uploads_prefix(self, namespace: str, playground: str) -> str:
        """Every participant's uploads to one Playground (removed with it)."""
        return f"s3://{self.bucket}/{UPLOADS}/{namespace}/{playground}/"

    def record_uri(self, namespace: str, playground: str, playground_uid: str, uid: str) -> str:
        """The operator's record of one Submission (see reconcile.records), by the Submission's uid.

        A Submission rejected for an invalid spec may name no playground: its record still has a key."""
        base = self.private_prefix(namespace, playground, playground_uid) if playground else (
            f"{self.namespace_private_prefix(namespace)}_/_")
        return f"{base}/records/{uid}.json"

    def training_prefix(self, namespace: str, playground: str, playground_uid: str, submission_uid: str) -> str:
        """A training Submission's model, checkpoint, progress and history: keyed by its uid, never reused."""
        return f"{self.private_prefix(namespace, playground, playground_uid)}/training/{submission_uid}/"

    def metafeatures_uri(self, namespace: str, playground: str, playground_uid: str, source: str) -> str:
        """The meta-features of a Playground's training data (written by its profile Job), per data source:
        new trainingData never reads the old one's."""
        return f"{self.private_prefix(namespace, playground, playground_uid)}/metafeatures-{source}.json"

    def results_prefix(self, namespace: str, playground: str, playground_uid: str) -> str:
        return f"s3://{self.bucket}/podium-results/{namespace}/{playground}/{playground_uid}/"

    def results_uri(self, namespace: str, playground: str, playground_uid: str, submission_uid: str) -> str:
        return f"{self.results_prefix(namespace, playground, playground_uid)}{submission_uid}.json"


def _json_env(name: str, default: Any) -> Any:
    """A JSON setting (the chart writes node selectors and tolerations so); a clear error when it is not JSON."""
    text = os.environ.get(name)
    if not text:
        return json.loads(json.dumps(default))
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SystemExit(f"{name}: not JSON ({error}); e.g. {json.dumps(default)}") from None
