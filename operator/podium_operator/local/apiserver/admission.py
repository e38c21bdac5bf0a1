"""Mutating admission, as the operator's webhook does it in a cluster: who submitted a Submission, and who
last changed a ModelDeployment's spec (``podium.dev/changed-by``, shown in its rollout history).

A real API server calls the operator's webhook, which stamps ``podium.dev/submitter`` with the user the
server authenticated; local mode's server calls no webhooks, so it does the same itself (the operator
core is not imported here, see the import contracts). A client's own value is overwritten at CREATE, and
no update changes it: an update gets the old value back (and one without an old value gets none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kmock

from podium.api import GROUP, MODEL_DEPLOYMENT, SUBMISSION, VERSION
from podium.api.deployment import CHANGED_BY_ANNOTATION
from podium.api.submission import SUBMITTER_ANNOTATION
from podium_operator.local.apiserver.auth import current_user

SUBMISSIONS = kmock.resource(GROUP, VERSION, SUBMISSION.plural)
DEPLOYMENTS = kmock.resource(GROUP, VERSION, MODEL_DEPLOYMENT.plural)


def stamp_changed_by(obj: dict[str, Any], old: Mapping[str, Any] | None, username: str) -> dict[str, Any]:
    """A ModelDeployment whose spec is new or changed is stamped with the user; other writes keep the old stamp."""
    annotations = dict((obj.get("metadata") or {}).get("annotations") or {})
    if old is None or old.get("spec") != obj.get("spec"):
        annotations[CHANGED_BY_ANNOTATION] = username
    else:
        previous = ((old.get("metadata") or {}).get("annotations") or {}).get(CHANGED_BY_ANNOTATION)
        annotations.pop(CHANGED_BY_ANNOTATION, None)
        if previous is not None:
            annotations[CHANGED_BY_ANNOTATION] = previous
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


def admit(resource: kmock.resource, obj: dict[str, Any], old: Mapping[str, Any] | None,
          username: str | None) -> dict[str, Any]:
    """``obj`` as it is stored: for a Submission, stamped with its submitter; anything else unchanged.

    ``username`` is None for writes that no request made (the server's own): those are left as they are.
    """
    if username is None:
        return obj
    if (resource.group, resource.plural) == (DEPLOYMENTS.group, DEPLOYMENTS.plural):
        return stamp_changed_by(obj, old, username)
    if (resource.group, resource.plural) != (SUBMISSIONS.group, SUBMISSIONS.plural):
        return obj
    annotations = dict((obj.get("metadata") or {}).get("annotations") or {})
    submitter = username if old is None else ((old.get("metadata") or {}).get("annotations") or {}).get(
        SUBMITTER_ANNOTATION)
    if annotations.get(SUBMITTER_ANNOTATION) == submitter:
        return obj
    if submitter is None:
        del annotations[SUBMITTER_ANNOTATION]
    else:
        annotations[SUBMITTER_ANNOTATION] = submitter
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


def admit_as_current_user(resource: kmock.resource, obj: dict[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """:func:`admit` for the user of the request being served (see ``auth.current_user``)."""
    user = current_user.get()
    return admit(resource, obj, old, user.name if user is not None else None)
