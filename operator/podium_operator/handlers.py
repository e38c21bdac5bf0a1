"""kopf handlers: thin adapters from watch events to the flows.

Nothing here reads the environment: ``__main__`` loads :class:`OperatorConfig` once and hands it over
in kopf's memo; the admission webhook is registered only when that config enables it
(:func:`enable_admission`), since kopf refuses to start with admission handlers and no server.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from podium.api import GROUP, MODEL_DEPLOYMENT, PLAYGROUND, SUBMISSION, VERSION
from podium.api.deployment import CHANGED_BY_ANNOTATION
from podium.api.submission import SUBMITTER_ANNOTATION
from podium_operator import k8s, metrics, webhook_tls
from podium_operator.controller import Controller
from podium_operator.flows import recommendations
from podium_operator.flows.deployment import forget_deployment, reconcile_deployment
from podium_operator.flows.playground import (
    check_holdout_source,
    delete_playground,
    reconcile_playground,
    waiting_submissions,
)
from podium_operator.flows.submission import reconcile_submission
from podium_operator.reconcile.inference_service import DEPLOYMENT_LABEL
from podium_operator.reconcile.names import MANAGED_BY, PLAYGROUND_LABEL, STEP_LABEL, SUBMISSION_LABEL
from podium_operator.reconcile.playground import PlaygroundOutcome
from podium_operator.settings import FINALIZER, PREFIX, OperatorConfig

registry = kopf.OperatorRegistry()
logger = logging.getLogger(__name__)


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup(registry=registry)
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Own prefixes keep our annotations recognisable and let two operators never clash.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key="last-handled")
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Only our own Jobs are streamed (server-side selector), never every Job of the cluster.
    settings.watching.label_selectors["batch", "v1", "jobs"] = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    config: OperatorConfig = memo.config
    if config.webhook.enabled:
        tls = webhook_tls.tls_files(config.webhook)
        settings.admission.server = kopf.WebhookServer(
            addr="0.0.0.0", port=config.webhook.port, host=config.webhook.host, certfile=tls.certfile,
            pkeyfile=tls.keyfile, cafile=tls.cafile,
        )
        settings.admission.managed = PREFIX  # kopf keeps the MutatingWebhookConfiguration "podium.dev"
    memo.controller = Controller(k8s.KubeClient(), config)
    if config.metrics_port is not None:
        logger.info("metrics on port %d", metrics.serve(config.metrics_port))


def _controller(memo: kopf.Memo) -> Controller:
    controller: Controller = memo.controller
    return controller


# A holdout that is not there yet (or not valid yet) is looked at again after 2, 4, 8 … at most 300 seconds.
HOLDOUT_RETRY_SECONDS = (2.0, 300.0)


@kopf.on.resume(GROUP, VERSION, PLAYGROUND.plural, registry=registry)
@kopf.on.create(GROUP, VERSION, PLAYGROUND.plural, registry=registry)
@kopf.on.update(GROUP, VERSION, PLAYGROUND.plural, field="spec", registry=registry)
async def playground_changed(body: kopf.Body, memo: kopf.Memo, retry: int = 0, **_: Any) -> None:
    controller = _controller(memo)
    outcome = await _reconcile_playground(controller, dict(body))
    if outcome.holdout_pending:  # the owner may still upload or fix it: no spec edit needed
        first, most = HOLDOUT_RETRY_SECONDS
        raise kopf.TemporaryError(outcome.message, delay=min(most, first * 2 ** min(retry, 16)))


@kopf.on.delete(GROUP, VERSION, PLAYGROUND.plural, registry=registry)
async def playground_deleted(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """The finalizer's work: the Playground's stored objects go with it (its Submissions by garbage collection)."""
    removed = await delete_playground(_controller(memo), dict(body))
    logger.info("removed %d stored objects of playground %s", removed, body["metadata"]["name"])


async def _reconcile_playground(controller: Controller, body: dict[str, Any]) -> PlaygroundOutcome:
    try:
        outcome = await reconcile_playground(controller, body)
    except Exception:
        metrics.RECONCILE_ERRORS.labels("Playground").inc()
        raise
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    for submission in await waiting_submissions(controller, namespace, name):
        await reconcile_submission(controller, namespace, submission)
    return outcome


def _competition_open_with_deadline(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return bool((spec.get("competition") or {}).get("deadline")) and not status.get("competitionClosed")


@kopf.timer(GROUP, VERSION, PLAYGROUND.plural, interval=15, when=_competition_open_with_deadline, registry=registry)
async def deadline_watch(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Close competitions whose deadline passed (publishes the private leaderboard)."""
    await _reconcile_playground(_controller(memo), dict(body))


@kopf.on.resume(GROUP, VERSION, SUBMISSION.plural, registry=registry)
@kopf.on.create(GROUP, VERSION, SUBMISSION.plural, registry=registry)
async def submission_created(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile_submission(memo, namespace, name)


async def _reconcile_submission(memo: kopf.Memo, namespace: str | None, name: str) -> None:
    try:
        await reconcile_submission(_controller(memo), namespace or "default", name)
    except Exception:
        metrics.RECONCILE_ERRORS.labels("Submission").inc()
        raise


@kopf.on.event("batch", "v1", "jobs", labels={SUBMISSION_LABEL: kopf.PRESENT, **MANAGED_BY}, registry=registry)
async def evaluation_job_changed(
    type: str, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    if type == "DELETED":
        return
    try:
        await reconcile_submission(_controller(memo), namespace or "default", labels[SUBMISSION_LABEL])
    except Exception:
        metrics.RECONCILE_ERRORS.labels("Submission").inc()
        logger.exception("reconciling submission %s/%s after a Job event", namespace, labels[SUBMISSION_LABEL])


@kopf.on.event("batch", "v1", "jobs", labels={STEP_LABEL: "profile", PLAYGROUND_LABEL: kopf.PRESENT, **MANAGED_BY},
               registry=registry)
async def profile_job_changed(type: str, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        return
    try:
        await recommendations.profile_job_changed(_controller(memo), namespace or "default", labels[PLAYGROUND_LABEL])
    except Exception:
        metrics.RECONCILE_ERRORS.labels("Playground").inc()
        logger.exception("recording the profile of playground %s/%s", namespace, labels[PLAYGROUND_LABEL])


def _training(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") == "Training"  # a forged phase only makes the operator look: the record decides


async def _training_tick(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile_submission(memo, namespace, name)


def enable_training_progress(interval: float, target: kopf.OperatorRegistry = registry) -> None:
    """Look at each training Submission every ``interval`` seconds: its Job's progress report goes to status."""
    kopf.timer(GROUP, VERSION, SUBMISSION.plural, interval=interval, initial_delay=interval, idle=None,
               when=_training, registry=target)(_training_tick)


def _ready_with_snapshot(status: kopf.Status, **_: Any) -> bool:
    return bool((status.get("holdout") or {}).get("sha256"))


async def _holdout_source_check(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Report a holdout source that no longer holds what was snapshotted (evaluations keep the snapshot)."""
    await check_holdout_source(_controller(memo), dict(body))


def enable_holdout_checks(interval: float, target: kopf.OperatorRegistry = registry) -> None:
    """Compare each Ready Playground's holdout source with its snapshot every ``interval`` seconds."""
    kopf.timer(GROUP, VERSION, PLAYGROUND.plural, interval=interval, initial_delay=interval, idle=None,
               when=_ready_with_snapshot, registry=target)(_holdout_source_check)


@kopf.on.resume(GROUP, VERSION, MODEL_DEPLOYMENT.plural, registry=registry)
@kopf.on.create(GROUP, VERSION, MODEL_DEPLOYMENT.plural, registry=registry)
@kopf.on.update(GROUP, VERSION, MODEL_DEPLOYMENT.plural, field="spec", registry=registry)
async def deployment_changed(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile_deployment(_controller(memo), namespace or "default", name)


@kopf.on.delete(GROUP, VERSION, MODEL_DEPLOYMENT.plural, registry=registry)
async def deployment_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await forget_deployment(_controller(memo), dict(body))


@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices", labels={DEPLOYMENT_LABEL: kopf.PRESENT, **MANAGED_BY},
               registry=registry)
async def inference_service_changed(type: str, namespace: str | None, labels: kopf.Labels, memo: kopf.Memo,
                                    **_: Any) -> None:
    """KServe moved (a revision became ready, traffic shifted): the rollout may go on at once."""
    if type != "DELETED":
        await _reconcile_deployment(_controller(memo), namespace or "default", labels[DEPLOYMENT_LABEL])


async def _reconcile_deployment(controller: Controller, namespace: str, name: str) -> None:
    try:
        await reconcile_deployment(controller, namespace, name)
    except Exception:
        metrics.RECONCILE_ERRORS.labels("ModelDeployment").inc()
        logger.exception("reconciling model deployment %s/%s", namespace, name)


async def _rollout_tick(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    await _reconcile_deployment(_controller(memo), namespace or "default", name)


def enable_rollouts(interval: float, target: kopf.OperatorRegistry = registry) -> None:
    """Look at every ModelDeployment each ``interval`` seconds: judge steps whose time is up."""
    kopf.timer(GROUP, VERSION, MODEL_DEPLOYMENT.plural, interval=interval, idle=None, registry=target)(_rollout_tick)


def _stamp_submitter(patch: kopf.Patch, userinfo: kopf.UserInfo, **kwargs: Any) -> None:
    """The submitter is who the API server authenticated at CREATE, never what a client claims, and it
    never changes afterwards (an UPDATE gets the old value back)."""
    if kwargs.get("operation") == "UPDATE":
        old: dict[str, Any] = kwargs.get("old") or {}
        submitter = (old.get("metadata", {}).get("annotations") or {}).get(SUBMITTER_ANNOTATION)
        if submitter is None:
            return
    else:
        submitter = userinfo.get("username") or "unknown"
    patch.metadata.setdefault("annotations", {})[SUBMITTER_ANNOTATION] = submitter


def enable_admission(target: kopf.OperatorRegistry = registry) -> None:
    """Register the mutating webhook. It needs a TLS server the API server reaches (the chart's Service);
    local mode's API server calls no webhooks, so there the annotation set by the client is taken as is."""
    kopf.on.mutate(GROUP, VERSION, SUBMISSION.plural, operations=["CREATE", "UPDATE"], registry=target)(
        _stamp_submitter)
    kopf.on.mutate(GROUP, VERSION, MODEL_DEPLOYMENT.plural, operations=["CREATE", "UPDATE"], registry=target)(
        _stamp_changed_by)


def _stamp_changed_by(patch: kopf.Patch, userinfo: kopf.UserInfo, body: kopf.Body, **kwargs: Any) -> None:
    """Who changed a ModelDeployment's spec last (its rollout history names them), as authenticated."""
    old: dict[str, Any] = kwargs.get("old") or {}
    if kwargs.get("operation") == "UPDATE" and old.get("spec") == body.get("spec"):
        previous = (old.get("metadata", {}).get("annotations") or {}).get(CHANGED_BY_ANNOTATION)
        patch.metadata.setdefault("annotations", {})[CHANGED_BY_ANNOTATION] = previous
        return
    patch.metadata.setdefault("annotations", {})[CHANGED_BY_ANNOTATION] = userinfo.get("username") or "unknown"
