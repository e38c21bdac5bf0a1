"""The emulator's state machine: objects, resourceVersions, watch history, CRDs, GC.

Synchronous on purpose: the emulator calls it from its event loop only, and as no method
awaits, every operation is atomic without locks. It keeps objects in kmock's
``ObjectsArray`` (with their history) and discovery in kmock's ``ResourcesArray``, so that
``emulator.objects[...]`` assertions keep working. Errors are raised as Status errors.
"""

from __future__ import annotations

import bisect
import datetime
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import kmock

from podium_operator.local.apiserver import builtins, errors, objects
from podium_operator.local.apiserver.conform import WriteOptions, conform
from podium_operator.local.apiserver.crds import CustomResource, custom_resources, established_status

Key = tuple[kmock.resource, str | None, str]  # resource, namespace (None if cluster-scoped), name
Matcher = Callable[[Mapping[str, Any]], bool]
Admit = Callable[[kmock.resource, dict[str, Any], Mapping[str, Any] | None], dict[str, Any]]  # (new, old) → stored

NAMESPACES = kmock.resource("", "v1", "namespaces")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MAX_EVENTS = 10_000  # watch history kept for resuming from a resourceVersion
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # a DNS subdomain
_RBAC = "rbac.authorization.k8s.io"  # roles and bindings allow any name without "/" ("system:x")


@dataclass(frozen=True)
class Change:
    """One entry of the watch history. ``old`` is the previous state for MODIFIED."""

    rv: int
    resource: kmock.resource
    type: str  # ADDED, MODIFIED, DELETED
    obj: Mapping[str, Any]
    old: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class DeleteOptions:
    propagation: str = "Background"  # Background, Foreground (treated as Background) or Orphan
    uid: str | None = None  # preconditions
    resource_version: str | None = None
    dry_run: bool = False  # ?dryRun=All: answer as the delete would, change nothing


class Store:
    def __init__(
        self,
        objects_array: kmock.ObjectsArray,
        resources: kmock.ResourcesArray,
        on_change: Callable[[], None],
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.objects = objects_array
        self.resources = resources
        self.custom: dict[kmock.resource, CustomResource] = {}
        self.changes: list[Change] = []
        self._on_change = on_change
        self.admit: Admit = lambda resource, obj, old: obj  # mutating admission: writes, not /status, not deletes
        self._clock = clock
        self._rv = 0
        for name in INITIAL_NAMESPACES:
            self.create(NAMESPACES, None, {"metadata": {"name": name}})

    # Reading.

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def info(self, resource: kmock.resource | None) -> kmock.ResourceInfo:
        """Discovery info of a served resource; 404 if it is not served."""
        if resource is None or resource.plural is None or resource not in self.resources:
            raise errors.resource_not_found()
        return self.resources[resource]

    def has_status(self, resource: kmock.resource) -> bool:
        return "status" in self.info(resource).subresources

    def get(self, resource: kmock.resource, namespace: str | None, name: str) -> dict[str, Any]:
        return dict(self._live(self._key(resource, namespace, name)))

    def select(self, resource: kmock.resource, matches: Matcher) -> list[dict[str, Any]]:
        """Matching objects, ordered by namespace and name (as etcd's keys are)."""
        found = [(key, obj) for key, obj in self._live_items() if key[0] == resource and matches(obj)]
        return [obj for _, obj in sorted(found, key=lambda item: (item[0][1] or "", item[0][2]))]

    def changes_after(self, rv: int) -> list[Change]:
        start = bisect.bisect_right(self.changes, rv, key=lambda change: change.rv)
        return self.changes[start:]

    @property
    def oldest_resumable_rv(self) -> int:
        """Watches may resume from this resourceVersion or any later one."""
        return self.changes[0].rv - 1 if self.changes else self._rv

    # Writing.

    def create(
        self, resource: kmock.resource, namespace: str | None, body: Any, options: WriteOptions | None = None
    ) -> dict[str, Any]:
        options = options or WriteOptions()
        info = self.info(resource)
        obj = self._new_object(resource, info, namespace, body, options)
        key = self._key(resource, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if key in self.objects and not self.objects[key].deleted:
            raise errors.already_exists(resource, key[2])
        if resource == CRDS:
            _check_crd_name(obj)
            obj["status"] = established_status(obj, obj["metadata"]["creationTimestamp"])
        if options.dry_run:
            return obj  # as it would be stored, but without a resourceVersion (as a real dry run)
        if resource == CRDS:
            self._register_crd(obj)
        return self._store(key, "ADDED", obj, old=None)

    def replace(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        body: Any,
        subresource: str | None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise errors.bad_request("the request body must be a JSON object")
        return self._update(self._key(resource, namespace, name), dict(body), subresource, options or WriteOptions())

    def patch(
        self,
        resource: kmock.resource,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None,
        options: WriteOptions | None = None,
    ) -> dict[str, Any]:
        options = options or WriteOptions()
        key = self._key(resource, namespace, name)
        if content_type.startswith(objects.APPLY_PATCH) and not self._exists(key):
            return self.create(resource, namespace, patch, options)  # server-side apply creates
        if content_type.startswith(objects.STRATEGIC_MERGE_PATCH) and resource in self.custom:
            raise errors.unsupported_media_type(content_type)  # as for real custom resources
        try:
            new = objects.apply_patch(self._live(key), patch, content_type)
        except objects.PatchError as e:
            raise errors.unprocessable(str(e)) from e
        return self._update(key, new, subresource, options)

    def delete(
        self, resource: kmock.resource, namespace: str | None, name: str, options: DeleteOptions
    ) -> dict[str, Any]:
        key = self._key(resource, namespace, name)
        obj = self._live(key)
        meta = obj["metadata"]
        if options.uid not in (None, meta["uid"]) or options.resource_version not in (None, meta["resourceVersion"]):
            raise errors.conflict(resource, name)
        finalizing = bool(meta.get("finalizers")) or resource == NAMESPACES
        if finalizing and not meta.get("deletionTimestamp"):
            deleting = {**obj, "metadata": {**meta, "deletionTimestamp": self._now(), "deletionGracePeriodSeconds": 0}}
        else:
            deleting = dict(obj)
        if options.dry_run:
            return deleting  # what a real delete would answer; nothing changes, nothing cascades
        if resource == NAMESPACES:
            return self._terminate_namespace(key)
        if not finalizing:
            return self._remove(key, cascade=options.propagation != "Orphan")
        if meta.get("deletionTimestamp"):
            return dict(obj)
        return self._store(key, "MODIFIED", deleting, old=obj)

    def delete_collection(self, resource: kmock.resource, matches: Matcher, options: DeleteOptions) -> None:
        if options.dry_run:
            return
        for obj in self.select(resource, matches):
            meta = obj["metadata"]
            if self._exists(self._key(resource, meta.get("namespace"), meta["name"])):  # not cascaded away
                self.delete(resource, meta.get("namespace"), meta["name"], options)

    # Internals.

    def _key(self, resource: kmock.resource, namespace: str | None, name: str) -> Key:
        return resource, namespace if self.info(resource).namespaced else None, name

    def _exists(self, key: Key) -> bool:
        return key in self.objects and not self.objects[key].deleted

    def _live(self, key: Key) -> Mapping[str, Any]:
        if not self._exists(key):
            raise errors.not_found(key[0], key[2])
        return self.objects[key].raw

    def _live_items(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        # A snapshot: callers may delete (cascade) while iterating.
        return iter([(key, obj.raw) for key, obj in self.objects.items() if not obj.deleted])

    def _now(self) -> str:
        return objects.now_timestamp(self._clock())

    def _new_object(
        self, resource: kmock.resource, info: kmock.ResourceInfo, namespace: str | None, body: Any,
        options: WriteOptions,
    ) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise errors.bad_request("the request body must be a JSON object")
        meta = dict(body.get("metadata") or {})
        meta["name"] = _object_name(resource, info, meta)
        if info.namespaced:
            meta["namespace"] = self._writable_namespace(namespace, meta.get("namespace"))
        else:
            meta.pop("namespace", None)
        for field in objects.SERVER_STAMPED_METADATA:
            meta.pop(field, None)
        meta |= {"uid": str(uuid.uuid4()), "creationTimestamp": self._now(), "generation": 1}
        obj = {**body, "apiVersion": api_version(resource), "kind": info.kind, "metadata": meta}
        if resource == NAMESPACES:
            obj |= {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        elif "status" in info.subresources:
            obj.pop("status", None)  # status is written via /status only
        obj = builtins.prepare(resource, obj)
        return conform(self.custom.get(resource), resource, self.admit(resource, obj, None), options)

    def _writable_namespace(self, url_namespace: str | None, body_namespace: str | None) -> str:
        if url_namespace and body_namespace and url_namespace != body_namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        name = url_namespace or body_namespace
        if not name:
            raise errors.bad_request("a namespace is required for a namespaced resource")
        if self._live((NAMESPACES, None, name))["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                f"unable to create new content in namespace {name} because it is being terminated"
            )
        return name

    def _update(self, key: Key, new: dict[str, Any], subresource: str | None, options: WriteOptions) -> dict[str, Any]:
        resource = key[0]
        old = self._live(key)
        has_status = self.has_status(resource)
        if subresource not in (None, "status") or (subresource == "status" and not has_status):
            raise errors.resource_not_found()
        new_rv = (new.get("metadata") or {}).get("resourceVersion")
        if new_rv not in (None, old["metadata"]["resourceVersion"]):
            raise errors.conflict(resource, key[2])
        new = objects.carry_server_fields(old, new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]  # compared below
        if subresource == "status":
            new = objects.with_status_of(old, new)  # only the status may change via /status
        elif has_status:
            new = objects.with_status_of(new, old)  # the status is ignored on the main resource
        if subresource is None:
            new = self.admit(resource, builtins.prepare(resource, new), old)
        new = conform(self.custom.get(resource), resource, new, options, old)
        if objects.spec_changed(old, new, ignore_status=has_status):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if options.dry_run:
            return new  # with the current resourceVersion, as a real dry run answers
        if resource == CRDS:
            self._register_crd(new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._store(key, "MODIFIED", new, old=old, notify=False)
            return self._remove(key, cascade=True)
        if new == old:
            return dict(old)  # a no-op: no new resourceVersion, no event
        return self._store(key, "MODIFIED", new, old=old)

    def _store(
        self, key: Key, event: str, obj: dict[str, Any], old: Mapping[str, Any] | None, notify: bool = True
    ) -> dict[str, Any]:
        self._rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
        if key not in self.objects:
            self.objects[key] = obj
        else:
            self.objects[key].create(obj)  # a new version in kmock's history
        if notify:
            self._record(Change(self._rv, key[0], event, obj, old))
        return obj

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        if len(self.changes) > 2 * MAX_EVENTS:
            del self.changes[:-MAX_EVENTS]
        self._on_change()

    def _remove(self, key: Key, cascade: bool) -> dict[str, Any]:
        """Really delete: the DELETED event, then garbage collection and namespace cleanup."""
        self._rv += 1
        last = self._live(key)
        obj = {**last, "metadata": {**last["metadata"], "resourceVersion": str(self._rv)}}
        self.objects[key].delete()
        self._record(Change(self._rv, key[0], "DELETED", obj))
        if cascade:
            self._collect_garbage(obj["metadata"]["uid"])
        if key[0] == CRDS:
            self._unregister_crd(obj)
        if key[1] is not None:
            self._finish_namespace(key[1])
        return obj

    def _collect_garbage(self, owner_uid: str) -> None:
        """Delete the dependents that have no live owner left (background propagation)."""
        live_uids = {obj["metadata"]["uid"] for _, obj in self._live_items()}
        for key, obj in self._live_items():
            owners = {ref.get("uid") for ref in obj["metadata"].get("ownerReferences", [])}
            if owner_uid in owners and not owners & live_uids and self._exists(key):
                self.delete(key[0], key[1], key[2], DeleteOptions())

    def _terminate_namespace(self, key: Key) -> dict[str, Any]:
        namespace = dict(self._live(key))
        if not namespace["metadata"].get("deletionTimestamp"):
            terminating = {
                **namespace,
                "metadata": {**namespace["metadata"], "deletionTimestamp": self._now(),
                             "deletionGracePeriodSeconds": 0},
                "status": {"phase": "Terminating"},
            }
            namespace = self._store(key, "MODIFIED", terminating, old=namespace)
        for (resource, name_space, name), _ in self._live_items():
            if name_space == key[2] and self._exists((resource, name_space, name)):
                self.delete(resource, name_space, name, DeleteOptions())
        self._finish_namespace(key[2])
        return namespace

    def _finish_namespace(self, name: str) -> None:
        key: Key = (NAMESPACES, None, name)
        if not self._exists(key) or not self._live(key)["metadata"].get("deletionTimestamp"):
            return
        if not any(ns == name for (_, ns, _), _ in self._live_items()):
            self._remove(key, cascade=True)

    def _register_crd(self, crd: Mapping[str, Any]) -> None:
        self._unregister_crd(crd, keep_objects=True)
        for custom in custom_resources(crd):
            self.resources[custom.resource] = custom.info
            self.custom[custom.resource] = custom

    def _unregister_crd(self, crd: Mapping[str, Any], keep_objects: bool = False) -> None:
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        for resource in [r for r in self.custom if (r.group, r.plural) == (group, plural)]:
            del self.resources[resource]
            del self.custom[resource]
            if not keep_objects:  # a deleted CRD takes its objects along (finalizers ignored)
                for key, _ in self._live_items():
                    if key[0] == resource:
                        self._remove(key, cascade=True)


def _object_name(resource: kmock.resource, info: kmock.ResourceInfo, meta: Mapping[str, Any]) -> str:
    name = meta.get("name") or (objects.generate_name(meta["generateName"]) if meta.get("generateName") else "")
    if _NAME.match(name) or (resource.group == _RBAC and name and "/" not in name):
        return str(name)
    message = f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "-" or "."'
    raise errors.invalid(info.kind or "", resource.group, name, [("metadata.name", message)])


def _check_crd_name(crd: Mapping[str, Any]) -> None:
    expected = f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"
    if crd["metadata"]["name"] != expected:
        cause = ("metadata.name", f'Invalid value: "{crd["metadata"]["name"]}": must be spec.names.plural+"."+spec.group')
        raise errors.invalid("CustomResourceDefinition", CRDS.group, crd["metadata"]["name"], [cause])


def api_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)
