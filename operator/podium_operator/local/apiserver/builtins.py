"""What the real API server does to some builtin objects on every write (pure functions).

kmock knows the builtins' names but not their types, so the emulator stores them as sent. Clients rely on
a few conversions and defaults, which are done here as the API server's conversion, defaulting and
create strategies do them:

- a Secret's write-only ``stringData`` is folded into ``data`` (base64) and dropped, and ``type``
  defaults to ``Opaque``; ``data`` that is not base64 is refused;
- a Job gets the selector the Job strategy generates (``batch.kubernetes.io/controller-uid: <uid>``, unless
  ``spec.manualSelector``), the matching labels on its pod template (what ``kubectl logs job/<name>``
  and the Job controller select pods by) and the defaults of ``batch/v1``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import kmock

from podium_operator.local.apiserver import errors

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
_BASE64 = re.compile(r"[A-Za-z0-9+/=]")
_JOB_DEFAULTS = {"backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
                 "podReplacementPolicy": "TerminatingOrFailed"}


def prepare(resource: kmock.resource, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` (with its uid) as the API server stores it, for the builtins that need more than storing."""
    kind = (resource.group or "", resource.plural)
    if kind == ("", "secrets"):
        return fold_string_data(obj)
    if kind == ("batch", "jobs"):
        return default_job(obj)
    return obj


def fold_string_data(secret: dict[str, Any]) -> dict[str, Any]:
    """``stringData`` merged into ``data`` (its keys win, as on a cluster) and dropped; ``type`` defaulted."""
    data = secret.get("data") or {}
    string_data = secret.get("stringData") or {}
    if not isinstance(data, Mapping) or not isinstance(string_data, Mapping):
        raise _undecodable("data and stringData must be maps of strings")
    for key, value in data.items():
        _check_base64(key, value)
    folded = {**data, **{key: base64.b64encode(str(value).encode()).decode() for key, value in string_data.items()}}
    result = {key: value for key, value in secret.items() if key not in ("data", "stringData")}
    if folded:
        result["data"] = folded
    result.setdefault("type", "Opaque")
    return result


def default_job(job: dict[str, Any]) -> dict[str, Any]:
    """The Job with its generated selector, its pod template's labels and ``batch/v1`` defaults."""
    spec = dict(job.get("spec") or {})
    for key, value in _JOB_DEFAULTS.items():
        spec.setdefault(key, value)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if not spec.get("manualSelector"):
        meta = job.get("metadata") or {}
        uid, name = meta.get("uid", ""), meta.get("name", "")
        template = dict(spec.get("template") or {})
        template_meta = dict(template.get("metadata") or {})
        template_meta["labels"] = {**(template_meta.get("labels") or {}), CONTROLLER_UID: uid, JOB_NAME: name,
                                   "controller-uid": uid, "job-name": name}
        spec["template"] = {**template, "metadata": template_meta}
        spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}
    return {**job, "spec": spec}


def _check_base64(key: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _undecodable(f"data.{key} must be a base64 string")
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        position = next((i for i, char in enumerate(value) if not _BASE64.match(char)), len(value))
        raise _undecodable(f"illegal base64 data at input byte {position}") from None


def _undecodable(detail: str) -> kmock.KubernetesError:
    return errors.bad_request(f'Secret in version "v1" cannot be handled as a Secret: {detail}')
