"""API discovery documents (``/api``, ``/apis``, ``/apis/<g>/<v>``, ``/version``), pure functions.

kubectl resolves ``get widgets``, ``get w`` (short name) and ``get podium`` (category)
from these documents; kopf finds its resources and their ``/status`` subresource here.
"""

from __future__ import annotations

import re
from typing import Any

import kmock

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "log": ["get"]}
_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def group_list(resources: kmock.ResourcesArray) -> dict[str, Any]:
    groups = _versions_by_group(resources)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in sorted(groups.items()) if name],
    }


def group(resources: kmock.ResourcesArray, name: str) -> dict[str, Any] | None:
    versions = _versions_by_group(resources).get(name)
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)} if name and versions else None


def resource_list(resources: kmock.ResourcesArray, group: str, version: str) -> dict[str, Any] | None:
    """The APIResourceList of one group-version, or None if nothing is served there."""
    served = [r for r in resources if r.group == group and r.version == version and r.plural]
    if not served:
        return None
    entries = [
        entry
        for resource in sorted(served, key=lambda r: str(r.plural))
        for entry in _entries(str(resource.plural), resources[resource])
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def version_priority(version: str) -> tuple[int, int, int]:
    """Sort key: GA before beta before alpha, higher numbers first (as Kubernetes sorts)."""
    match = _VERSION.match(version)
    if match is None:
        return (3, 0, 0)  # non-conventional versions last
    stability = {None: 0, "beta": 1, "alpha": 2}[match[2]]
    return (stability, -int(match[1]), -int(match[3] or 0))


def _versions_by_group(resources: kmock.ResourcesArray) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for resource in resources:
        if resource.group is not None and resource.version is not None:
            found.setdefault(resource.group, set()).add(resource.version)
    return {name: sorted(versions, key=version_priority) for name, versions in found.items()}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{version}", "version": version} for version in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def _entries(plural: str, info: kmock.ResourceInfo) -> list[dict[str, Any]]:
    main = {
        "name": plural,
        "singularName": info.singular or plural,
        "namespaced": bool(info.namespaced),
        "kind": info.kind,
        "verbs": sorted(info.verbs),
        "shortNames": sorted(info.shortnames),
        "categories": sorted(info.categories),
    }
    subresources = [
        {
            "name": f"{plural}/{sub}",
            "singularName": "",
            "namespaced": bool(info.namespaced),
            "kind": info.kind,
            "verbs": _SUBRESOURCE_VERBS.get(sub, ["create", "get"]),
        }
        for sub in sorted(info.subresources)
    ]
    return [main, *subresources]
