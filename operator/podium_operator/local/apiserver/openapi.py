"""Just enough OpenAPI v3 for kubectl (pure functions).

``kubectl apply/create`` validates manifests before sending them. It looks up each kind's
PATCH operation in ``/openapi/v3/<group-version>``; when that operation declares the
``fieldValidation`` query parameter, kubectl leaves validation to the server (as with any
modern server) instead of downloading the protobuf-only ``/openapi/v2``. Schemas are not
published, so ``kubectl explain`` does not work.
"""

from __future__ import annotations

from typing import Any

import kmock

from podium_operator.local.apiserver.discovery import SERVER_VERSION


def index(resources: kmock.ResourcesArray) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is."""
    paths = sorted({_gv_path(r) for r in resources if r.version is not None})
    return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}"} for path in paths}}


def group_version(resources: kmock.ResourcesArray, path: str) -> dict[str, Any] | None:
    """``/openapi/v3/api/v1`` or ``/openapi/v3/apis/<group>/<version>``; None if not served."""
    served = [r for r in resources if r.plural and _gv_path(r) == path]
    if not served:
        return None
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": {_object_path(r, resources[r]): {"patch": _patch_operation(r, resources[r])} for r in served},
        "components": {"schemas": {}},
    }


def _gv_path(resource: kmock.resource) -> str:
    return f"apis/{resource.group}/{resource.version}" if resource.group else f"api/{resource.version}"


def _object_path(resource: kmock.resource, info: kmock.ResourceInfo) -> str:
    namespace = "namespaces/{namespace}/" if info.namespaced else ""
    return f"/{_gv_path(resource)}/{namespace}{resource.plural}/{{name}}"


def _patch_operation(resource: kmock.resource, info: kmock.ResourceInfo) -> dict[str, Any]:
    return {
        "x-kubernetes-group-version-kind": {"group": resource.group, "version": resource.version, "kind": info.kind},
        "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "OK"}},
    }
