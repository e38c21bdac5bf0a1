"""Who makes each request to the API emulator, and whether the chart's RBAC lets them: 401 and 403.

Authentication is by bearer token (``Authorization: Bearer <token>``), as with a static token file: each
token is one :class:`User` (a name and groups). kubectl (client-go) sends credentials over TLS only, and
this server is plain HTTP on loopback, so a token may also lead the path instead: ``/podium-token/<token>/x``
is served as ``/x`` with that bearer token (:meth:`Identities.unwrap_token_path`); the kubeconfigs the
server writes name such a server URL, and a base URL with the admin's token serves in-process clients
that set no header (tests, the job runner). No request is ever served unauthenticated. The admin, ``podium-admin`` in ``system:masters``, may do
anything; every other user may do what the ClusterRoles they are bound to (per namespace, see
:mod:`.rbac`) allow, plus what Kubernetes lets every authenticated user do (discovery, a
SelfSubjectReview). Without a valid token only the health and version endpoints answer; the rest is
401 ``Unauthorized``, and a request no rule allows is 403 ``Forbidden``, naming user, verb and resource.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import kmock
import multidict
import yarl

from podium_operator.local.apiserver import errors, rbac
from podium_operator.local.apiserver.access import Attributes, attributes

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
ADMIN = "podium-admin"
TOKEN_PATH = "/podium-token/"
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})  # system:public-info-viewer
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a DNS label: a context, a key segment


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    # (namespace, ClusterRole) pairs; a namespace of None binds cluster-wide (a ClusterRoleBinding)
    bindings: tuple[tuple[str | None, str], ...] = field(default=(), compare=False)

    @property
    def is_admin(self) -> bool:
        return MASTERS in self.groups


# The user of the request being served (each request is served in its own task, hence a context variable).
current_user: contextvars.ContextVar[User | None] = contextvars.ContextVar("podium_api_user", default=None)


class Identities:
    """The emulator's users: tokens, groups and role bindings. Change it only from the server's loop."""

    def __init__(self, roles: Callable[[], Mapping[str, Sequence[rbac.Rule]]] = rbac.chart_cluster_roles,
                 everyone: Callable[[], Sequence[tuple[str | None, Sequence[rbac.Rule]]]] =
                 rbac.chart_authenticated_rules) -> None:
        self._load_roles = roles
        self._roles: Mapping[str, Sequence[rbac.Rule]] | None = None
        self._load_everyone = everyone
        self._everyone: Sequence[tuple[str | None, Sequence[rbac.Rule]]] | None = None
        self.admin_token = secrets.token_urlsafe(24)
        self._tokens: dict[str, User] = {self.admin_token: User(ADMIN, (MASTERS, AUTHENTICATED))}

    def add_user(self, name: str, *, groups: Iterable[str] = (), role: str | None = None,
                 namespaces: Iterable[str | None] = ("default",)) -> str:
        """Register ``name`` (replacing an earlier registration) and return the bearer token it uses.

        ``role`` (a ClusterRole of the chart, or ``participant``/``owner``) is bound in each of
        ``namespaces`` (None: cluster-wide); without one the user may only do what every user may.
        """
        if not _NAME.match(name) or name in (ADMIN, "podium-local"):
            raise ValueError(f"{name!r}: a local user's name must be a DNS label (lower case, digits, '-')")
        bindings: tuple[tuple[str | None, str], ...] = ()
        if role is not None:
            cluster_role = rbac.role_name(role)
            if cluster_role not in self.roles:
                raise ValueError(f"{role!r} is no ClusterRole of the chart ({', '.join(sorted(self.roles))})")
            bindings = tuple((namespace, cluster_role) for namespace in namespaces)
        user = User(name, tuple(dict.fromkeys([*groups, AUTHENTICATED])), bindings)
        self._tokens = {token: known for token, known in self._tokens.items() if known.name != name}
        token = secrets.token_urlsafe(24)
        self._tokens[token] = user
        return token

    @property
    def roles(self) -> Mapping[str, Sequence[rbac.Rule]]:
        if self._roles is None:
            self._roles = self._load_roles()
        return self._roles

    def users(self) -> dict[str, User]:
        return {user.name: user for user in self._tokens.values()}

    def token_of(self, name: str) -> str:
        for token, user in self._tokens.items():
            if user.name == name:
                return token
        raise KeyError(f"no local user {name!r}")

    @staticmethod
    def unwrap_token_path(request: aiohttp.web.BaseRequest) -> aiohttp.web.BaseRequest:
        """``/podium-token/<token>/x?q`` → ``/x?q`` with ``Authorization: Bearer <token>``; others unchanged."""
        path = request.rel_url.raw_path
        if not path.startswith(TOKEN_PATH):
            return request
        token, _, rest = path[len(TOKEN_PATH):].partition("/")
        query = request.rel_url.raw_query_string
        rel_url = yarl.URL(f"/{rest}" + (f"?{query}" if query else ""), encoded=True)
        headers = multidict.CIMultiDict(request.headers)
        headers["Authorization"] = f"Bearer {token}"
        return request.clone(rel_url=rel_url, headers=headers)

    def authenticate(self, request: kmock.Request) -> User | None:
        """The user of the request's bearer token; None without a token on a public path; else 401."""
        header = next((value for key, value in request.headers.items() if key.lower() == "authorization"), "")
        scheme, _, token = header.strip().partition(" ")
        user = None
        if scheme.lower() == "bearer" and token.strip():
            user = next((known for known_token, known in self._tokens.items()
                         if secrets.compare_digest(known_token.encode(), token.strip().encode())), None)
        if user is None and not (request.url.path in PUBLIC_PATHS and not scheme):
            raise errors.api_error(401, "Unauthorized", "Unauthorized")
        return user

    def authorize(self, user: User, request: kmock.Request) -> None:
        """403 unless ``user`` may make the request (non-resource requests are open to every user)."""
        found = attributes(str(request.method.value), request.url.path, request.params)
        if found is None or user.is_admin or self.allows(user, found):
            return
        raise forbidden(user, found)

    def allows(self, user: User, found: Attributes) -> bool:
        if rbac.allows(rbac.BASIC_USER, found.call, found.name):
            return True
        if self._everyone is None:
            self._everyone = self._load_everyone()
        if any(namespace in (None, found.namespace) and rbac.allows(rules, found.call, found.name)
               for namespace, rules in self._everyone):
            return True
        return any(namespace is None or namespace == found.namespace
                   for namespace, role in user.bindings
                   if rbac.allows(self.roles.get(role, ()), found.call, found.name))


def forbidden(user: User, found: Attributes) -> kmock.KubernetesError:
    """403 worded like the real server's RBAC denials."""
    call = found.call
    plural = call.resource.split("/", 1)[0]
    what = errors.qualified(plural, call.group)
    subject = f'{what} "{found.name}"' if found.name else what
    where = f'in the namespace "{found.namespace}"' if found.namespace else "at the cluster scope"
    message = (f'{subject} is forbidden: User "{user.name}" cannot {call.verb} resource "{call.resource}" '
               f'in API group "{call.group}" {where}')
    return errors.api_error(403, "Forbidden", message, name=found.name, group=call.group, kind=plural)


def self_subject_review(body: Any, user: User) -> dict[str, Any]:
    """What ``POST .../selfsubjectreviews`` answers: the request's own user (nothing is stored)."""
    api_version = body.get("apiVersion") if isinstance(body, Mapping) else None
    return {"apiVersion": api_version or "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user.name, "groups": list(user.groups)}}}
