"""A Submission's children (Jobs, claims) and the presigned URLs its trusted Jobs get instead of credentials."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterable

from podium_operator import k8s
from podium_operator.controller import Controller
from podium_operator.reconcile.names import owned_by

logger = logging.getLogger(__name__)
# A Job may wait in a queue before it starts: its URLs outlive its deadline by this much.
PRESIGN_MARGIN_SECONDS = 3600


async def own_child(ctl: Controller, resource: k8s.Resource, namespace: str, name: str, uid: str) -> dict | None:
    """This Submission's child ``name``, or None. One left by an earlier Submission of the same name (not yet
    garbage-collected, or orphaned) is deleted rather than taken for this one's: its result is not ours."""
    child = await ctl.kube.get(resource, namespace, name)
    if child is not None and not owned_by(child, uid):
        logger.info("deleting %s %s/%s, left by an earlier Submission of the same name", resource.plural, namespace, name)
        await ctl.kube.delete(resource, namespace, name)
        return None
    return child


async def presigned_urls(access: Iterable[tuple[str, str]], *, deadline_seconds: int) -> tuple[tuple[str, str], ...]:
    """A short-lived presigned URL per ``(method, uri)``, keyed ``"METHOD uri"``: a Job's only access."""
    from podium import storage

    expires = datetime.timedelta(seconds=deadline_seconds + PRESIGN_MARGIN_SECONDS)
    wanted = list(access)

    def sign() -> tuple[tuple[str, str], ...]:
        return tuple((f"{method} {uri}", storage.presign(uri, method=method, expires=expires))  # type: ignore[arg-type]
                     for method, uri in wanted)

    return await asyncio.to_thread(sign)
