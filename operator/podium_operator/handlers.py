"""kopf handlers: thin adapters from watch events to the pure reconcile functions."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from podium.api import GROUP, PLAYGROUND, VERSION
from podium_operator.reconcile.playground import reconcile_playground
from podium_operator.settings import FINALIZER, PREFIX

registry = kopf.OperatorRegistry()


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup(registry=registry)
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Own prefixes keep our annotations recognisable and let two operators never clash.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key="last-handled")
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@kopf.on.resume(GROUP, VERSION, PLAYGROUND.plural, registry=registry)
@kopf.on.create(GROUP, VERSION, PLAYGROUND.plural, registry=registry)
@kopf.on.update(GROUP, VERSION, PLAYGROUND.plural, registry=registry)
def reconcile_playground_handler(
    body: kopf.Body, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    outcome = reconcile_playground(
        dict(spec), generation=meta.get("generation"), status=dict(status), now=_now()
    )
    patch.status.update(outcome.status_patch)
    for event_type, reason, message in outcome.events:
        (kopf.info if event_type == "Normal" else kopf.warn)(body, reason=reason, message=message)
