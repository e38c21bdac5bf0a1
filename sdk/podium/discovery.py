"""The object store a cluster's Podium uses, and the credentials to reach it, found from the cluster itself.

The Helm chart (and local mode) publish ConfigMap ``podium-client`` in ``podium-system`` with ``endpoint``,
``bucket`` and ``region``. ``PODIUM_S3_ENDPOINT`` / ``PODIUM_S3_BUCKET`` override what it says; without it
``AWS_ENDPOINT_URL`` (else AWS S3) and bucket ``podium``. Credentials come, in order, from explicit
arguments or ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, the kubeconfig user's extension
``podium.dev/object-store`` (``{accessKeyId, secretAccessKey}``), then boto3's default chain (``~/.aws``,
instance roles) where boto3 is installed; else requests go unsigned (and a store that needs them says so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from podium.storage import Store

CONFIG_MAP = "podium-client"
CONFIG_NAMESPACE = "podium-system"
EXTENSION = "podium.dev/object-store"
DEFAULT_BUCKET = "podium"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    source: str  # where they came from, for errors: "the kubeconfig user alice"
    session_token: str | None = None


def object_store(published: Mapping[str, str], *, kubeconfig: str | None = None, context: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None) -> tuple[Store, str]:
    """The store and bucket, from what the cluster ``published`` (its ConfigMap's data, maybe empty)."""
    env = os.environ
    endpoint = (env.get("PODIUM_S3_ENDPOINT") or published.get("endpoint") or env.get("AWS_ENDPOINT_URL")
                or "https://s3.amazonaws.com")
    bucket = env.get("PODIUM_S3_BUCKET") or published.get("bucket") or DEFAULT_BUCKET
    region = published.get("region") or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None
    found = credentials(kubeconfig=kubeconfig, context=context, access_key=access_key, secret_key=secret_key)
    if found is None:
        return Store(endpoint, region=region, source="none found (anonymous requests)"), bucket
    return Store(endpoint, found.access_key, found.secret_key, region, found.source, found.session_token), bucket


def credentials(*, kubeconfig: str | None = None, context: str | None = None, access_key: str | None = None,
                secret_key: str | None = None) -> Credentials | None:
    """The first of: the arguments, ``AWS_*``, the kubeconfig user's extension, boto3's chain; None if none."""
    if access_key and secret_key:
        return Credentials(access_key, secret_key, "the arguments")
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                           "the environment (AWS_ACCESS_KEY_ID)", os.environ.get("AWS_SESSION_TOKEN"))
    return kubeconfig_credentials(kubeconfig, context) or _boto3_credentials()


def kubeconfig_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials | None:
    """From the ``podium.dev/object-store`` extension of the user that ``context`` (default: the current one)
    names in ``kubeconfig`` (default: ``$KUBECONFIG``, a ``:``-separated list as kubectl reads it, else
    ``~/.kube/config``); None where there is no such extension."""
    config = _merged(_kubeconfig_paths(kubeconfig))
    context = context or config.get("current-context")
    user_name = next((c.get("context", {}).get("user") for c in config.get("contexts") or []
                      if isinstance(c, Mapping) and c.get("name") == context), None)
    user = next((u.get("user") or {} for u in config.get("users") or []
                 if isinstance(u, Mapping) and u.get("name") == user_name), None)
    if not isinstance(user, Mapping):
        return None
    for extension in user.get("extensions") or []:
        if isinstance(extension, Mapping) and extension.get("name") == EXTENSION:
            value = extension.get("extension") or {}
            if isinstance(value, Mapping) and value.get("accessKeyId") and value.get("secretAccessKey"):
                return Credentials(str(value["accessKeyId"]), str(value["secretAccessKey"]),
                                   f"the kubeconfig user {user_name}", value.get("sessionToken") or None)
    return None


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    listed = os.environ.get("KUBECONFIG")
    if listed:
        return [Path(part).expanduser() for part in listed.split(os.pathsep) if part]
    return [Path("~/.kube/config").expanduser()]


def _merged(paths: list[Path]) -> dict[str, Any]:
    """kubectl's merge: the first file to set a key (or a named entry) wins."""
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue  # the Kubernetes client reports an unusable kubeconfig; this only looks for an extension
        if not isinstance(loaded, Mapping):
            continue
        for key, value in loaded.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                names = {item.get("name") for item in merged[key] if isinstance(item, Mapping)}
                merged[key] += [item for item in value if not isinstance(item, Mapping) or item.get("name") not in names]
            else:
                merged.setdefault(key, value)
    return merged


def _boto3_credentials() -> Credentials | None:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return None
    try:
        found = boto3.Session().get_credentials()
        if found is None:
            return None
        frozen = found.get_frozen_credentials()
    except BotoCoreError:  # a provider of the chain failed (a metadata service refused): as if none were found
        return None
    return Credentials(frozen.access_key, frozen.secret_key, f"boto3's default chain ({found.method})", frozen.token)
