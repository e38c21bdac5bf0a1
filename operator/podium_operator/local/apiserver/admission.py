"""Mutating admission, as the operator's webhook does it in a cluster: who submitted a Submission.

A real API server calls the operator's webhook, which stamps ``podium.dev/submitter`` with the user the
server authenticated; local mode's server calls no webhooks, so it does the same itself (the operator
core is not imported here, see the import contracts). A client's own value is overwritten at CREATE, and
no update changes it: an update gets the old value back (and one without an old value gets none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kmock

from podium.api import GROUP, SUBMISSION, VERSION
from podium.api.submission import SUBMITTER_ANNOTATION
from podium_operator.local.apiserver.auth import current_user

SUBMISSIONS = kmock.resource(GROUP, VERSION, SUBMISSION.plural)


def admit(resource: kmock.resource, obj: dict[str, Any], old: Mapping[str, Any] | None,
          username: str | None) -> dict[str, Any]:
    """``obj`` as it is stored: for a Submission, stamped with its submitter; anything else unchanged.

    ``username`` is None for writes that no request made (the server's own): those are left as they are.
    """
    if (resource.group, resource.plural) != (SUBMISSIONS.group, SUBMISSIONS.plural) or username is None:
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
