"""Which RBAC verb on which resource a request needs, so local mode can check a Role covers a client.

Kubernetes authorises ``(verb, apiGroup, resource[/subresource])``; the verb comes from the HTTP method
and the path (a name or not) and ``watch=true``. Only resource requests count: discovery, ``/openapi``
and health checks need no RBAC rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ApiCall:
    verb: str
    group: str
    resource: str  # "plural" or "plural/subresource"


@dataclass(frozen=True)
class Attributes:
    """What an authorizer sees of a resource request: the call, and where (``namespace``, ``name``) it goes."""

    call: ApiCall
    namespace: str | None  # for a Namespace itself, its name (as Kubernetes authorizes it)
    name: str | None


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def api_call(method: str, path: str, query: Mapping[str, str]) -> ApiCall | None:
    """The RBAC view of one request, or None when it is not a resource request."""
    found = attributes(method, path, query)
    return found.call if found else None


def attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes | None:
    """The RBAC view of one request with its namespace and name, or None when it is not a resource request."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = rest[1] if rest[:1] == ["namespaces"] and len(rest) >= 2 else None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]  # namespaced: drop "namespaces/<ns>"; "namespaces/<name>" itself stays
    plural, name, subresource = rest[0], rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    resource = f"{plural}/{subresource}" if subresource else plural
    method = method.upper()
    if method == "GET":
        verb = "watch" if query.get("watch") in ("true", "1") else "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    elif method in _VERBS:
        verb = _VERBS[method]
    else:
        return None
    return Attributes(ApiCall(verb, group, resource), namespace, name)


def user_agent_product(user_agent: str) -> str:
    """``kopf/1.45.2 ...`` → ``kopf``: who made a request, as far as its User-Agent says."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0]
