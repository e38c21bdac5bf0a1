"""A Kubernetes API emulator with real-cluster semantics, built on kmock's ``KubernetesEmulator``.

kmock routes HTTP requests, parses them into Kubernetes verbs and keeps objects with their
history; this subclass replaces its simplistic object handling with what an operator relies
on (see :mod:`.store`): resourceVersions and optimistic concurrency, generations,
the status subresource, finalizers, owner-reference garbage collection, namespaces,
resumable watches, selectors, CRDs with schemas, discovery and server-side printing; and what
kubectl relies on: OpenAPI v3 with the CRDs' schemas (:mod:`.openapi`, ``explain``), the builtins'
columns (:mod:`.printers`), pod logs (:mod:`.logs`), ``dryRun=All`` and ``fieldValidation`` on every
write (:mod:`.query`, :mod:`.conform`) and the builtins' conversions and defaults (:mod:`.builtins`).

kmock's DSL still works on top: ``emulator['post', kmock.resource('v1/configmaps')] << 500``
overrides the emulated behaviour for matching requests (and then nothing is stored).
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import parsing

from podium_operator.local.apiserver import (
    access,
    discovery,
    errors,
    logs,
    objects,
    openapi,
    printers,
    query,
    tables,
)
from podium_operator.local.apiserver.admission import admit_as_current_user
from podium_operator.local.apiserver.auth import Identities, current_user, self_subject_review
from podium_operator.local.apiserver.crds import load_crd_documents
from podium_operator.local.apiserver.store import CRDS, Store, api_version


def respond(payload: kmock.Payload, status: int = 200, *, content_type: str | None = None,
            warning: str | None = None) -> kmock.Response:
    """``payload`` with ``status`` and these headers, each named even when None (not sent): kmock keeps the
    status and headers of the last Response a reaction returned on the reaction itself, for every later
    request it serves, so each object handler answers through this one, which sets them all."""
    return kmock.Response(status=status, payload=payload, headers={"Content-Type": content_type, "Warning": warning})


@dataclass(frozen=True)
class Target:
    """What a request addresses: a served resource and maybe a namespace, name, subresource."""

    resource: kmock.resource
    info: kmock.ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def object_name(self) -> str:
        """The name, for verbs that need one (PUT and PATCH on a collection are not allowed)."""
        if self.name is None:
            raise errors.method_not_allowed()
        return self.name


@attrs.define(kw_only=True)
class PodiumEmulator(kmock.KubernetesEmulator):
    """The emulated API server: an aiohttp request handler (see ``apiserver.ApiServer``)."""

    # kmock keeps every request (with its body) for assertions, and matching a request against its
    # reactions walks that history for every reaction: a long history makes every request
    # O(history × reactions), which dominated the emulator's time. Keep just the current request
    # (so no DSL reaction may count requests, e.g. ``emulator['post'][:1]``).
    request_history: int = 1

    # Which client (User-Agent product) made which RBAC-relevant call: tests check a Role covers it.
    access_log: set[tuple[str, access.ApiCall]] = attrs.field(factory=set, init=False)
    # Who may do what (bearer tokens, the chart's ClusterRoles); see .auth.
    identities: Identities = attrs.field(factory=Identities, init=False)
    # Where each container's log is (the job runner's files), for `kubectl logs`; None: no runner, no logs.
    pod_logs: logs.LogSource | None = attrs.field(default=None, init=False)
    _store: Store = attrs.field(init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback[kmock.method.PUT] << self._serve_replace  # kmock has no PUT
        self.fallback[kmock.method.DELETE] << self._serve_delete  # also deletecollection
        self.fallback["get /openapi/v3"] << (lambda: openapi.index(self.resources, self._store.custom))
        self.fallback["get", re.compile(r"/openapi/v3/.+")] << self._serve_openapi
        for path in ("/healthz", "/livez", "/readyz"):
            self.fallback[f"get {path}"] << b"ok"
        self.resources.load_bundled()
        self._store = Store(self.objects, self.resources, on_change=self._notify_watchers)
        self._store.admit = admit_as_current_user

    @property
    def store(self) -> Store:
        return self._store

    def load_crd_files(self, paths: Iterable[Path]) -> None:
        """Create (or update) the CRDs found in YAML files or directories of them."""
        for crd in load_crd_documents(paths):
            self.apply_crd(crd)

    def apply_crd(self, crd: Mapping[str, Any]) -> dict[str, Any]:
        """Create a CRD, or update it if it exists (like ``kubectl apply``)."""
        name = crd["metadata"]["name"]
        try:
            current = self._store.get(CRDS, None, name)
        except kmock.KubernetesError:
            return self._store.create(CRDS, None, crd)
        return self._store.replace(CRDS, None, name, {**crd, "metadata": current["metadata"]}, None)

    async def __aenter__(self) -> PodiumEmulator:
        self._changed = asyncio.Event()  # an event of the loop that serves (after a restart too)
        return await super().__aenter__()

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        return await super().__call__(self.identities.unwrap_token_path(raw_request))

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if len(self._requests) > self.request_history:
            for log in [self._requests, *(payload._requests for payload in self._payloads)]:
                del log[: -self.request_history]
        user = self.identities.authenticate(request)  # 401 without a valid token (but for health checks)
        if user is not None:
            self.identities.authorize(user, request)  # 403 unless the user's roles allow it
        current_user.set(user)  # for admission, in this request's task
        call = access.api_call(str(request.method.value), request.url.path, request.params)
        if call is not None:
            self.access_log.add((access.user_agent_product(request.headers.get("User-Agent", "")), call))
        # Skip KubernetesEmulator._handle(): it stores every write in its own simplistic way
        # before dispatching. Here the store changes in the fallback handlers below instead.
        return await kmock.RawHandler._handle(self, request)

    def _notify_watchers(self) -> None:
        # Wake up every watch waiting on the current event, and give later waits a new one.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if not isinstance(exc, kmock.KubernetesError):
            return await super()._render_error(exc)  # a bug: 500 with the traceback
        # API errors are ordinary responses, not failures for kmock to accumulate for the test.
        if self._errors and self._errors[-1] and self._errors[-1][-1] is exc:
            self._errors[-1].pop()
        return aiohttp.web.json_response(errors.status_body(exc), status=exc.status)

    # Discovery.

    async def _serve_root(self, request: kmock.Request) -> kmock.Payload:
        return {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}

    async def _serve_server_version(self, request: kmock.Request) -> kmock.Payload:
        return discovery.SERVER_VERSION

    async def _serve_api(self, request: kmock.Request) -> kmock.Payload:
        return discovery.api_versions()

    async def _serve_apis(self, request: kmock.Request) -> kmock.Payload:
        return discovery.group_list(self.resources)

    async def _serve_group(self, request: kmock.Request) -> kmock.Payload:
        return _or_not_found(discovery.group(self.resources, _group_of(request)))

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        resource = request.resource
        if resource is None or resource.group is None or resource.version is None:
            raise errors.resource_not_found()
        return _or_not_found(discovery.resource_list(self.resources, resource.group, resource.version))

    async def _serve_openapi(self, request: kmock.Request) -> kmock.Payload:
        path = request.url.path.removeprefix("/openapi/v3/")
        return _or_not_found(openapi.group_version(self.resources, path, self._store.custom))

    # Objects.

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        if target.subresource == "log" and (target.resource.group, target.resource.plural) == ("", "pods"):
            return await self._serve_log(request, target)
        if target.subresource not in (None, "status"):
            raise errors.resource_not_found()
        obj = self._store.get(target.resource, target.namespace, target.object_name)
        return respond(self._table([obj], request, target) if _wants_table(request) else obj)

    async def _serve_log(self, request: kmock.Request, target: Target) -> kmock.Payload:
        def current() -> dict[str, Any] | None:
            try:
                return self._store.get(target.resource, target.namespace, target.object_name)
            except kmock.KubernetesError:
                return None

        pod = self._store.get(target.resource, target.namespace, target.object_name)
        return respond(await logs.serve(pod, request.params, self.pod_logs, current), content_type="text/plain")

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        items = self._store.select(target.resource, query.matcher(request))
        if _wants_table(request):
            return respond(self._table(items, request, target))
        return respond({
            "apiVersion": api_version(target.resource),
            "kind": f"{target.info.kind}List",
            "metadata": {"resourceVersion": self._store.resource_version},
            "items": items,
        })

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        if target.subresource is not None:
            raise errors.method_not_allowed()
        if (target.resource.group, target.resource.plural) == ("authentication.k8s.io", "selfsubjectreviews"):
            user = current_user.get()
            if user is None:
                raise errors.api_error(401, "Unauthorized", "Unauthorized")
            return respond(self_subject_review(request.data, user), 201)
        options = query.write_options(request)
        created = self._store.create(target.resource, target.namespace, request.data, options)
        return respond(created, 201, warning=query.warning_header(options.warnings))

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        content_type = request.headers.get("Content-Type", objects.MERGE_PATCH)
        body = yaml.safe_load(request.text) if content_type.startswith(objects.APPLY_PATCH) else request.data
        options = query.write_options(request)
        patched = self._store.patch(
            target.resource, target.namespace, target.object_name, body, content_type, target.subresource, options
        )
        return respond(patched, warning=query.warning_header(options.warnings))

    async def _serve_replace(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        options = query.write_options(request)
        replaced = self._store.replace(
            target.resource, target.namespace, target.object_name, request.data, target.subresource, options
        )
        return respond(replaced, warning=query.warning_header(options.warnings))

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        options = query.delete_options(request)
        if target.subresource is not None:
            raise errors.method_not_allowed()
        if target.name is not None:
            return respond(self._store.delete(target.resource, target.namespace, target.name, options))
        self._store.delete_collection(target.resource, query.matcher(request), options)
        return respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    # kmock streams watches without a Content-Type, but client-go (kubectl) needs one,
    # hence a Response around the stream instead of kmock's plain async generator.
    async def _serve_watch(self, request: kmock.Request) -> kmock.Payload:  # type: ignore[override]
        return respond(self._watch(request, self._target(request)), content_type="application/json")

    async def _watch(self, request: kmock.Request, target: Target) -> AsyncIterator[kmock.Payload]:
        yield b""  # send the headers at once, even if no event comes for a while
        deadline = query.deadline(request.params.get("timeoutSeconds"))
        matches = query.matcher(request)
        since = request.params.get("resourceVersion", "0")
        position = int(since) if since.isdigit() else 0
        if position and position < self._store.oldest_resumable_rv:
            yield errors.expired_event(position, self._store.oldest_resumable_rv)
            return
        if position == 0 or request.params.get("sendInitialEvents") == "true":
            position = int(self._store.resource_version)
            for obj in self._store.select(target.resource, matches):
                yield self._event(request, target, "ADDED", obj)
            if request.params.get("sendInitialEvents") == "true":
                yield query.initial_events_end(target.resource, target.info.kind, position)
        while True:
            changed = self._changed  # taken before reading, so no change slips in between
            changes = self._store.changes_after(position)
            for change in changes:
                position = change.rv
                if (event_type := query.event_type(change, target.resource, matches)) is not None:
                    yield self._event(request, target, event_type, change.obj)
            if not changes and not await query.wait(changed, deadline):
                return

    # Helpers.

    def _target(self, request: kmock.Request) -> Target:
        """What the request addresses; 404 for unknown resources or misplaced namespaces."""
        info = self._store.info(request.resource)
        if request.resource is None or (request.namespace is not None and not info.namespaced):
            raise errors.resource_not_found()
        return Target(request.resource, info, request.namespace, request.name, request.subresource)

    def _event(self, request: kmock.Request, target: Target, event_type: str, obj: Any) -> kmock.Payload:
        payload = self._table([obj], request, target) if _wants_table(request) else obj
        return {"type": event_type, "object": payload}

    def _table(self, items: list[dict[str, Any]], request: kmock.Request, target: Target) -> dict[str, Any]:
        custom = self._store.custom.get(target.resource)
        options: dict[str, Any] = {"resource_version": self._store.resource_version,
                                   "include_object": request.params.get("includeObject", "PartialObjectMetadata"),
                                   "now": datetime.datetime.now(datetime.UTC)}
        printer = printers.printer_for(target.resource.group, target.resource.plural)
        if custom is None and printer is not None:
            return printers.build_table(items, printer, **options)
        return tables.build_table(items, custom.printer_columns if custom else [], **options)


def _or_not_found(document: dict[str, Any] | None) -> dict[str, Any]:
    if document is None:
        raise errors.resource_not_found()
    return document


def _group_of(request: kmock.Request) -> str:
    return request.resource.group if request.resource and request.resource.group else ""


def _wants_table(request: kmock.Request) -> bool:
    return tables.wants_table(request.headers.get("Accept", ""))


# kmock's parse_path() takes the "namespaces" of /api/v1/namespaces[/name[/status]] for the
# prefix of namespaced paths and fails (500) or misreads the name; the request is parsed
# before any handler or reaction runs, so only the parser itself can be fixed.
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>status|finalize))?)?/?")
_kmock_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    if match := _NAMESPACE_PATH.fullmatch(path):
        return parsing.ParsedPath("", "v1", "namespaces", None, match["name"], match["sub"])
    return _kmock_parse_path(path)


parsing.parse_path = _parse_path
