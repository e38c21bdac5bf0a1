"""Object-level semantics of the API server: patches and server-owned fields (pure functions)."""

from __future__ import annotations

import copy
import datetime
import secrets
from collections.abc import Mapping
from typing import Any

import jsonpatch
import jsonpointer

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# Metadata the server stamps: a client can neither set it on create nor change it later.
SERVER_STAMPED_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")
SERVER_OWNED_METADATA = ("name", "namespace", *SERVER_STAMPED_METADATA)

# Strategic merge merges these lists of objects by a key instead of replacing them
# (a subset of the builtins' `patchMergeKey`s; enough for conditions, containers, env…).
STRATEGIC_MERGE_KEYS = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "ownerReferences": "uid",
    "imagePullSecrets": "name",
}

_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as in apiserver's generateName


class PatchError(ValueError):
    """The patch cannot be applied (the API answers 422 Unprocessable Entity)."""


def now_timestamp(now: datetime.datetime) -> str:
    """RFC 3339 with seconds precision, as Kubernetes serializes ``metav1.Time``."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))


def apply_patch(current: Mapping[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Apply a PATCH body of the given content type to a copy of ``current``."""
    kind = content_type.split(";")[0].strip()
    if kind == JSON_PATCH:
        return _json_patch(current, patch)
    if not isinstance(patch, Mapping):
        raise PatchError(f"a {kind} patch must be a JSON object")
    if kind == STRATEGIC_MERGE_PATCH:
        return strategic_merge(current, patch)
    return merge_patch(current, patch)  # merge-patch and (approximately) server-side apply


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    """An approximation of strategic merge: merge patch + lists merged by known keys."""
    if isinstance(patch, list) and isinstance(target, list) and field in STRATEGIC_MERGE_KEYS:
        return _merge_lists(target, patch, STRATEGIC_MERGE_KEYS[field])
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # directives ($setElementOrder/…, $retainKeys, $patch) are hints
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge(result.get(key), value, key)
    return result


def carry_server_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Restore server-owned metadata that a client update tried to change or drop."""
    result = dict(new)
    metadata = dict(new.get("metadata") or {})
    for key in SERVER_OWNED_METADATA:
        if key in old.get("metadata", {}):
            metadata[key] = old["metadata"][key]
        else:
            metadata.pop(key, None)
    result["metadata"] = metadata
    result["apiVersion"], result["kind"] = old.get("apiVersion"), old.get("kind")
    return result


def with_status_of(obj: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with the ``status`` of ``source`` (or none, if ``source`` has none)."""
    result = {key: value for key, value in obj.items() if key != "status"}
    if "status" in source:
        result["status"] = source["status"]
    return result


def spec_changed(old: Mapping[str, Any], new: Mapping[str, Any], *, ignore_status: bool) -> bool:
    """Whether anything generation-worthy changed: all but metadata (and status, if separate)."""
    ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if ignore_status else set())
    keys = (set(old) | set(new)) - ignored
    return any(old.get(key) != new.get(key) for key in keys)


def _json_patch(current: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        result = jsonpatch.apply_patch(dict(current), patch)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as e:
        raise PatchError(str(e)) from e
    if not isinstance(result, dict):
        raise PatchError("the JSON patch replaced the whole object with a non-object")
    return result


def _merge_lists(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    if not all(isinstance(item, Mapping) and key in item for item in [*target, *patch]):
        return copy.deepcopy(patch)
    result = [dict(item) for item in target]
    positions = {item[key]: index for index, item in enumerate(result)}
    for item in patch:
        if item.get("$patch") == "delete":
            result = [existing for existing in result if existing[key] != item[key]]
            positions = {existing[key]: index for index, existing in enumerate(result)}
        elif item[key] in positions:
            result[positions[item[key]]] = strategic_merge(result[positions[item[key]]], item)
        else:
            positions[item[key]] = len(result)
            result.append(strategic_merge({}, item))
    return result
