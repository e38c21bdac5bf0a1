"""The job runner's only door to the Kubernetes API: a few JSON verbs over aiohttp.

aiohttp rather than the official client: the runner lives in an event loop, and a watch
is just a stream of JSON lines, which needs no generated models.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


def jobs_path(namespace: str | None = None) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs" if namespace else "/apis/batch/v1/jobs"


def job_path(namespace: str, name: str) -> str:
    return f"{jobs_path(namespace)}/{name}"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def pod_path(namespace: str, name: str) -> str:
    return f"{pods_path(namespace)}/{name}"


def core_path(namespace: str, plural: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/{plural}/{name}"


def claims_path(namespace: str | None = None) -> str:
    return f"/api/v1/namespaces/{namespace}/persistentvolumeclaims" if namespace else "/api/v1/persistentvolumeclaims"


def network_policies_path(namespace: str) -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"


class KubeApi:
    """JSON in, JSON out; 404 on reads and deletes is ``None``, other errors raise :class:`ApiError`."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/")
        self._session = session

    async def get(self, path: str) -> dict[str, Any] | None:
        return await self._call("GET", path, missing_ok=True)

    async def list(self, path: str, *, label_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        params = {"labelSelector": label_selector} if label_selector else None
        body = await self._call("GET", path, params=params)
        assert body is not None
        return body.get("items") or [], str(body.get("metadata", {}).get("resourceVersion", ""))

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        body = await self._call("POST", path, json_body=obj)
        assert body is not None
        return body

    async def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any] | None:
        """Merge-patch an object; ``None`` when it is gone."""
        return await self._call("PATCH", path, json_body=patch, content_type=MERGE_PATCH, missing_ok=True)

    async def delete(self, path: str) -> None:
        await self._call("DELETE", path, missing_ok=True)

    async def watch(self, path: str, *, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        """Yield watch events until the server closes the stream; an ``ERROR`` event raises."""
        params = {"watch": "true", "allowWatchBookmarks": "true"}
        if resource_version.isdigit():  # the emulator may answer a placeholder for lists
            params["resourceVersion"] = resource_version
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.get(self._base + path, params=params, timeout=timeout) as response:
            if response.status >= 400:
                raise ApiError(response.status, await _body(response))
            buffer = b""
            async for chunk in response.content.iter_any():  # lines may exceed aiohttp's line limit
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        obj = event.get("object", {})
                        raise ApiError(int(obj.get("code", 500)), obj)
                    yield event

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        data = None if json_body is None else json.dumps(json_body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        async with self._session.request(
            method, self._base + path, params=params, data=data, headers=headers
        ) as response:
            body = await _body(response)
            if response.status == 404 and missing_ok:
                return None
            if response.status >= 400:
                raise ApiError(response.status, body)
            return body if isinstance(body, dict) else {}


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return text
