"""A Kubernetes API emulator with real-cluster semantics, built on kmock's ``KubernetesEmulator``.

kmock routes HTTP requests, parses them into Kubernetes verbs and keeps objects with their
history; this subclass replaces its simplistic object handling with what an operator relies
on (see :mod:`.store`): resourceVersions and optimistic concurrency, generations,
the status subresource, finalizers, owner-reference garbage collection, namespaces,
resumable watches, selectors, CRDs with schemas, discovery and server-side printing.

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

from podium_operator.local.apiserver import access, discovery, errors, objects, openapi, selectors, tables
from podium_operator.local.apiserver.admission import admit_as_current_user
from podium_operator.local.apiserver.auth import Identities, current_user, self_subject_review
from podium_operator.local.apiserver.crds import load_crd_documents
from podium_operator.local.apiserver.store import CRDS, Change, DeleteOptions, Matcher, Store, api_version

_JSON = {"Content-Type": "application/json"}


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
    _store: Store = attrs.field(init=False)
    _changed: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback[kmock.method.PUT] << self._serve_replace  # kmock has no PUT
        self.fallback[kmock.method.DELETE] << self._serve_delete  # also deletecollection
        self.fallback["get /openapi/v3"] << (lambda: openapi.index(self.resources))
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
        return _or_not_found(openapi.group_version(self.resources, path))

    # Objects.

    async def _serve_fetch(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        if target.subresource not in (None, "status"):
            raise errors.resource_not_found()
        obj = self._store.get(target.resource, target.namespace, target.object_name)
        return self._table([obj], request, target) if _wants_table(request) else obj

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        items = self._store.select(target.resource, _matcher(request))
        if _wants_table(request):
            return self._table(items, request, target)
        return {
            "apiVersion": api_version(target.resource),
            "kind": f"{target.info.kind}List",
            "metadata": {"resourceVersion": self._store.resource_version},
            "items": items,
        }

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        if target.subresource is not None:
            raise errors.method_not_allowed()
        if (target.resource.group, target.resource.plural) == ("authentication.k8s.io", "selfsubjectreviews"):
            user = current_user.get()
            if user is None:
                raise errors.api_error(401, "Unauthorized", "Unauthorized")
            return kmock.Response(status=201, payload=self_subject_review(request.data, user))
        created = self._store.create(target.resource, target.namespace, request.data, strict=_strict(request))
        return kmock.Response(status=201, payload=created)

    async def _serve_update(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        content_type = request.headers.get("Content-Type", objects.MERGE_PATCH)
        body = yaml.safe_load(request.text) if content_type.startswith(objects.APPLY_PATCH) else request.data
        return self._store.patch(
            target.resource, target.namespace, target.object_name, body, content_type, target.subresource,
            strict=_strict(request),
        )

    async def _serve_replace(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        return self._store.replace(
            target.resource, target.namespace, target.object_name, request.data, target.subresource,
            strict=_strict(request),
        )

    async def _serve_delete(self, request: kmock.Request) -> kmock.Payload:
        target = self._target(request)
        options = _delete_options(request)
        if target.subresource is not None:
            raise errors.method_not_allowed()
        if target.name is not None:
            return self._store.delete(target.resource, target.namespace, target.name, options)
        self._store.delete_collection(target.resource, _matcher(request), options)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}

    # kmock streams watches without a Content-Type, but client-go (kubectl) needs one,
    # hence a Response around the stream instead of kmock's plain async generator.
    async def _serve_watch(self, request: kmock.Request) -> kmock.Payload:  # type: ignore[override]
        return kmock.Response(headers=_JSON, payload=self._watch(request, self._target(request)))

    async def _watch(self, request: kmock.Request, target: Target) -> AsyncIterator[kmock.Payload]:
        yield b""  # send the headers at once, even if no event comes for a while
        deadline = _deadline(request.params.get("timeoutSeconds"))
        matches = _matcher(request)
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
                yield _initial_events_end(target, position)
        while True:
            changed = self._changed  # taken before reading, so no change slips in between
            changes = self._store.changes_after(position)
            for change in changes:
                position = change.rv
                if (event_type := _event_type(change, target.resource, matches)) is not None:
                    yield self._event(request, target, event_type, change.obj)
            if not changes and not await _wait(changed, deadline):
                return

    # Helpers.

    def _target(self, request: kmock.Request) -> Target:
        """What the request addresses; 404 for unknown resources or misplaced namespaces."""
        if request.params.get("dryRun"):  # refuse rather than persist what should not be
            raise errors.bad_request("dryRun is not supported by the local API emulator")
        info = self._store.info(request.resource)
        if request.resource is None or (request.namespace is not None and not info.namespaced):
            raise errors.resource_not_found()
        return Target(request.resource, info, request.namespace, request.name, request.subresource)

    def _event(self, request: kmock.Request, target: Target, event_type: str, obj: Any) -> kmock.Payload:
        payload = self._table([obj], request, target) if _wants_table(request) else obj
        return {"type": event_type, "object": payload}

    def _table(self, items: list[dict[str, Any]], request: kmock.Request, target: Target) -> dict[str, Any]:
        custom = self._store.custom.get(target.resource)
        return tables.build_table(
            items,
            custom.printer_columns if custom else [],
            resource_version=self._store.resource_version,
            include_object=request.params.get("includeObject", "PartialObjectMetadata"),
            now=datetime.datetime.now(datetime.UTC),
        )


def _or_not_found(document: dict[str, Any] | None) -> dict[str, Any]:
    if document is None:
        raise errors.resource_not_found()
    return document


def _group_of(request: kmock.Request) -> str:
    return request.resource.group if request.resource and request.resource.group else ""


def _wants_table(request: kmock.Request) -> bool:
    return tables.wants_table(request.headers.get("Accept", ""))


def _strict(request: kmock.Request) -> bool:
    return request.params.get("fieldValidation") == "Strict"


def _matcher(request: kmock.Request) -> Matcher:
    """Namespace, name, ``labelSelector`` and ``fieldSelector`` of a list/watch request."""
    try:
        labels = selectors.parse_label_selector(request.params.get("labelSelector", ""))
        fields = selectors.parse_field_selector(request.params.get("fieldSelector", ""))
    except selectors.SelectorError as e:
        raise errors.bad_request(str(e)) from e
    namespace, name = request.namespace, request.name

    def matches(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        return (
            namespace in (None, meta.get("namespace"))
            and name in (None, meta.get("name"))
            and selectors.match_labels(labels, meta.get("labels") or {})
            and selectors.match_fields(fields, obj)
        )

    return matches


def _event_type(change: Change, resource: kmock.resource, matches: Matcher) -> str | None:
    """How a watcher with a selector sees a change: objects may enter or leave its view."""
    if change.resource != resource:
        return None
    now_matching = matches(change.obj)
    was_matching = change.old is not None and matches(change.old)
    if change.type != "MODIFIED":
        return change.type if now_matching else None
    if now_matching:
        return "MODIFIED" if was_matching else "ADDED"
    return "DELETED" if was_matching else None


def _initial_events_end(target: Target, rv: int) -> dict[str, Any]:
    # The bookmark that ends the initial listing of `sendInitialEvents=true` (watch-list) clients.
    metadata = {"resourceVersion": str(rv), "annotations": {"k8s.io/initial-events-end": "true"}}
    bookmark = {"apiVersion": api_version(target.resource), "kind": target.info.kind, "metadata": metadata}
    return {"type": "BOOKMARK", "object": bookmark}


def _delete_options(request: kmock.Request) -> DeleteOptions:
    body = request.data if isinstance(request.data, Mapping) else {}
    preconditions = body.get("preconditions") or {}
    policy = body.get("propagationPolicy") or request.params.get("propagationPolicy") or "Background"
    return DeleteOptions(policy, preconditions.get("uid"), preconditions.get("resourceVersion"))


def _deadline(timeout_seconds: str | None) -> float | None:
    if not timeout_seconds or not timeout_seconds.isdigit():
        return None
    return asyncio.get_running_loop().time() + int(timeout_seconds)


async def _wait(event: asyncio.Event, deadline: float | None) -> bool:
    """Wait for the event until the deadline; False if the deadline passed."""
    timeout = None if deadline is None else deadline - asyncio.get_running_loop().time()
    if timeout is not None and timeout <= 0:
        return False
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


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
