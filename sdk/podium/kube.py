"""The SDK's Kubernetes client: built from a kubeconfig, its failures turned into one-line PodiumErrors.

``with translated(namespace): api.create_namespaced_custom_object(...)`` raises, instead of the client's
multi-line ``ApiException`` dump, a :class:`podium.errors.ClusterError` subclass (``AlreadyExists``,
``InvalidResource``, ``Forbidden``, ...) that says what is wrong and how to fix it. It is still an
``ApiException`` (``status``, ``reason``, ``body``), so code that caught those keeps working.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes.client import ApiException

from podium import errors
from podium.api import ALL_KINDS, GROUP, VERSION
from podium.discovery import CONFIG_MAP, CONFIG_NAMESPACE

_HINT_CLUSTER = ("start one (`podium local up`, then `export KUBECONFIG=~/.podium/local/kubeconfig`), or point "
                 "KUBECONFIG and its current context at a running cluster")


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A client for ``kubeconfig`` (default: ``$KUBECONFIG``, else ``~/.kube/config``) as its ``context``."""
    import kubernetes

    try:
        return kubernetes.config.new_client_from_config(config_file=kubeconfig or os.environ.get("KUBECONFIG"),
                                                        context=context)
    except (kubernetes.config.ConfigException, OSError) as error:
        raise errors.ClusterUnreachable(f"no usable kubeconfig ({str(error).splitlines()[0]})",
                                        field="kubeconfig", hint=_HINT_CLUSTER) from None


def published_store(client: Any) -> dict[str, str]:
    """The data of ConfigMap podium-system/podium-client (see podium.discovery); empty where the cluster
    publishes none, or this user may not read it."""
    from kubernetes.client import CoreV1Api

    try:
        with translated(CONFIG_NAMESPACE):
            found = CoreV1Api(client).read_namespaced_config_map(CONFIG_MAP, CONFIG_NAMESPACE)
    except (errors.ResourceNotFound, errors.Forbidden):
        return {}
    return {key: str(value) for key, value in (found.data or {}).items()}


@contextmanager
def translated(namespace: str) -> Iterator[None]:
    """Turn the client's failures into :class:`podium.errors.ClusterError` s (see the module's docstring)."""
    from urllib3.exceptions import HTTPError

    try:
        yield
    except errors.ClusterError:
        raise
    except ApiException as error:
        raise cluster_error(error, namespace) from None
    except HTTPError as error:
        pool = getattr(error, "pool", None)
        where = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else "the cluster"
        reason = getattr(error, "reason", None) or error
        raise _api_flavoured(errors.ClusterUnreachable, f"cannot reach the Kubernetes API at {where} ({reason})",
                             _HINT_CLUSTER) from None


def cluster_error(error: ApiException, namespace: str) -> errors.ClusterError:
    """One line saying what the API server refused and what to do about it."""
    status = _status(error.body)
    details: dict[str, Any] = status["details"] if isinstance(status.get("details"), dict) else {}
    message = str(status.get("message") or error.reason or "")
    kind, short = _kind(str(details.get("kind") or ""))
    name = details.get("name")
    where = "" if namespace == "default" else f" -n {namespace}"
    code = error.status or 0
    if code == 409 and status.get("reason") == "AlreadyExists":
        made = _api_flavoured(errors.AlreadyExists, f"{kind} {name} already exists in namespace {namespace}",
                              f"choose another name, or delete it with `kubectl delete {short} {name}{where}`")
    elif code == 409:
        made = _api_flavoured(errors.Conflict, f"{kind} {name} changed while this call ran ({message})",
                              "retry: read it again, then make the change")
    elif code in (400, 422):
        causes = [c for c in details.get("causes") or [] if isinstance(c, dict)]
        fields = "; ".join(f"{c.get('field')}: {c.get('message')}" for c in causes if c.get("field"))
        naming = any(c.get("field") == "metadata.name" for c in causes)
        made = _api_flavoured(
            errors.InvalidResource,
            f"{kind} {name} is invalid: {fields}" if fields and name else message,
            "use a name of lowercase letters, digits and '-' that starts and ends with a letter or digit"
            if naming else "correct the named fields (`podium validate FILE` checks a manifest offline)")
    elif code == 401:
        made = _api_flavoured(errors.Unauthorized, f"the cluster refused this client's credentials ({message})",
                              'check KUBECONFIG and its current context; in local mode: eval "$(podium local env)"')
    elif code == 403:
        made = _api_flavoured(errors.Forbidden, message or "forbidden",
                              f"ask an owner or admin to bind you (the chart's podium-participant or "
                              f"podium-playground-owner ClusterRole) in namespace {namespace}, or act as someone "
                              "who may (context=..., `kubectl --context`)")
    elif code == 404 and name:
        made = _api_flavoured(errors.ResourceNotFound, f"{kind} {name} not found in namespace {namespace}",
                              f"check the name and namespace: `kubectl get {short}{where}`")
    elif code == 404:
        made = _api_flavoured(errors.ResourceNotFound, f"the cluster does not serve this resource ({message})",
                              "install Podium's CRDs: `kubectl apply -f crds/` (or `helm install podium charts/podium`)")
    else:
        made = _api_flavoured(errors.ClusterError, f"the Kubernetes API answered {code} {error.reason}: {message}",
                              "retry; if it persists, check the API server's and the operator's logs")
    made.status, made.reason, made.body, made.headers = error.status, error.reason, error.body, error.headers
    return made


def _status(body: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _kind(kind: str) -> tuple[str, str]:
    """``playgrounds`` or ``Playground`` → (``playground``, ``pg``): how messages and kubectl name it."""
    for resource in ALL_KINDS:
        if kind.lower() in (resource.plural, resource.kind.lower()):
            return resource.kind.lower(), resource.short_names[0] if resource.short_names else resource.plural
    singular = kind.lower().removesuffix("s") or "resource"
    return singular, kind.lower() or "all"


# Each ClusterError subclass, also an ApiException: callers that caught the client's error still do.
_FLAVOURED: dict[type[errors.ClusterError], type[errors.ClusterError]] = {}


def _api_flavoured(cls: type[errors.ClusterError], problem: str, hint: str) -> Any:
    if cls not in _FLAVOURED:
        flavoured = type(cls.__name__, (cls, ApiException), {"__module__": __name__, "__doc__": cls.__doc__,
                                                              "__qualname__": f"_Api{cls.__name__}"})
        globals()[f"_Api{cls.__name__}"] = flavoured  # importable by that name, so it pickles
        _FLAVOURED[cls] = flavoured
    made: Any = _FLAVOURED[cls](problem, hint=hint)
    made.status = made.reason = made.body = made.headers = made.data = None
    return made


def custom_objects(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A ``CustomObjectsApi`` for ``kubeconfig`` as ``context`` (e.g. ``context="alice"``, a local-mode user)."""
    from kubernetes.client import CustomObjectsApi

    return CustomObjectsApi(api_client(kubeconfig, context))


def watch_until(api: Any, namespace: str, plural: str, take: Callable[[dict[str, Any]], None],
                done: Callable[[], bool], deadline: float) -> bool:
    """Feed every object of ``plural`` to ``take`` (one LIST, then a WATCH from its resourceVersion, relisting
    when that expired) until ``done()``; False at ``deadline`` (``time.monotonic()``). The cost does not grow
    with how long the wait is, nor with how many objects are awaited."""
    while not done():
        listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        for item in listed["items"]:
            take(item)
        try:
            if not _watch(api, namespace, plural, listed["metadata"]["resourceVersion"], take, done, deadline):
                return False
        except ApiException as error:
            if error.status != 410:  # 410 Gone: the version expired, list again
                raise
    return True


def _watch(api: Any, namespace: str, plural: str, version: str, take: Callable[[dict[str, Any]], None],
           done: Callable[[], bool], deadline: float) -> bool:
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        response = api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, watch=True, resource_version=version, allow_watch_bookmarks=True,
            timeout_seconds=max(1, min(int(remaining) + 1, 60)), _preload_content=False)
        try:
            for line in response:  # urllib3 yields whole lines: one event each
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message", "watch error"))
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if event.get("type") in ("ADDED", "MODIFIED"):
                    take(obj)
                if done():
                    return True
        finally:
            response.close()
            response.release_conn()
    return True
