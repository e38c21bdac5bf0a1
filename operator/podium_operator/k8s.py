"""The one Kubernetes I/O layer: generic get / list / create / patch / delete, with 404 and 409 handled.

Built on the official client's ``ApiClient.call_api`` (so any group, version and plural works, core
included) and run in worker threads so kopf's event loop never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from podium.api import MODEL_DEPLOYMENT, PLAYGROUND, SUBMISSION, ResourceKind


class Conflict(Exception):
    """The object changed since it was read (HTTP 409): re-read and retry."""


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base

    @classmethod
    def of(cls, kind: ResourceKind) -> Resource:
        """A Podium kind's coordinates, from the API models (the one source of them)."""
        return cls(kind.group, kind.version, kind.plural)


PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}

JOBS = Resource("batch", "v1", "jobs")
PODS = Resource("", "v1", "pods")
NETWORK_POLICIES = Resource("networking.k8s.io", "v1", "networkpolicies")
PVCS = Resource("", "v1", "persistentvolumeclaims")
PLAYGROUNDS = Resource.of(PLAYGROUND)
SUBMISSIONS = Resource.of(SUBMISSION)
MODEL_DEPLOYMENTS = Resource.of(MODEL_DEPLOYMENT)
INFERENCE_SERVICES = Resource("serving.kserve.io", "v1beta1", "inferenceservices")


IO_THREADS = 16
USER_AGENT = "podium-operator/0.1.0"


def load_api_client() -> kubernetes.client.ApiClient:
    """In-cluster config when running in a pod, else the kubeconfig (KUBECONFIG)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = IO_THREADS  # one connection per I/O thread, reused
    return kubernetes.client.ApiClient(configuration)


class KubeClient:
    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api_client or load_api_client()
        self.api.user_agent = USER_AGENT  # tells the operator's calls apart in audit logs (and local RBAC checks)
        # The official client blocks; its own pool of threads keeps kopf's default executor free.
        self.executor = concurrent.futures.ThreadPoolExecutor(IO_THREADS, thread_name_prefix="podium-k8s")

    def _call(
        self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None, patch: str = "merge"
    ) -> dict[str, Any]:
        content_type = PATCH_TYPES[patch] if method == "PATCH" else "application/json"
        verb, url, headers, payload, _ = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(verb, url, header_params=headers, body=payload)
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiException.from_response(http_resp=response, body=data.decode(errors="replace"), data=None)
        return json.loads(data) if data else {}

    async def _run(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            call = functools.partial(self._call, method, path, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"{method} {path}: {error.reason}") from error
            raise

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self._run("GET", resource.path(namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def list(self, resource: Resource, namespace: str | None = None, *, labels: str | None = None) -> list[dict]:
        query = {"labelSelector": labels} if labels else None
        return (await self._run("GET", resource.path(namespace), query=query)).get("items", [])

    async def create(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return await self._run("POST", resource.path(namespace), body=body)

    async def create_if_absent(self, resource: Resource, namespace: str | None, body: dict[str, Any]) -> dict:
        """Deterministic names make creation idempotent: an existing object is returned as is."""
        try:
            return await self.create(resource, namespace, body)
        except Conflict:
            existing = await self.get(resource, namespace, body["metadata"]["name"])
            if existing is None:
                raise
            return existing

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            await self._run("DELETE", resource.path(namespace, name))
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def patch(
        self, resource: Resource, namespace: str | None, name: str, body: Any, *, subresource: str | None = None,
        kind: str = "merge",
    ) -> dict[str, Any]:
        return await self._run("PATCH", resource.path(namespace, name, subresource), body=body, patch=kind)

    async def replace(self, resource: Resource, namespace: str | None, name: str, body: dict, *,
                      subresource: str | None = None) -> dict[str, Any]:
        """PUT with the body's resourceVersion: raises Conflict if someone else wrote first."""
        return await self._run("PUT", resource.path(namespace, name, subresource), body=body)
