"""Shared fixtures for local-mode tests: a real HTTP Kubernetes API emulator per test.

Usage in any test under ``tests/local/``::

    def test_something(api_server, api_client, tmp_path):
        jobs = kubernetes.client.BatchV1Api(api_client)        # the official client
        kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")   # for kubectl/kopf
        api_server.emulator.objects["batch/v1/jobs", "default", "name"]     # read-only peeking
        api_server.call(some_function_touching_the_emulator)               # anything else

``make_api_client(api_server)`` (``from tests.local.conftest import make_api_client``) builds more clients:
the admin's by default, or a user's with ``token=api_server.add_user("alice")``. (``api_server.url``
carries the admin's token in its path, for clients that set none: ``JobRunner(api_server.url, ...)``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

from podium_operator.local.apiserver.server import ApiServer

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_api_client(api_server: ApiServer, token: str | None = None) -> kubernetes.client.ApiClient:
    """An official-client ``ApiClient`` for the server (plain HTTP, no retries), sending ``token``
    (default: the admin's) as a bearer token."""
    config = kubernetes.client.Configuration()
    config.host = api_server.server_url
    config.api_key = {"authorization": f"Bearer {token if token is not None else api_server.admin_token}"}
    config.retries = 0
    return kubernetes.client.ApiClient(config)


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """A started :class:`ApiServer` on a random loopback port, stopped after the test.

    It serves the bundled Kubernetes builtins (namespaces ``default`` and ``kube-system``
    exist) and no CRDs: create them via ``apiextensions.k8s.io/v1`` (e.g. ``kubectl apply``
    or the client), load the repository's ones with :func:`load_repo_crds`, or use the
    ``podium_api_server`` fixture. A test module may override this fixture (same name) to
    start the server differently; ``api_client`` then uses the override.
    """
    with ApiServer() as server:
        yield server


@pytest.fixture
def api_client(api_server: ApiServer) -> Iterator[kubernetes.client.ApiClient]:
    """A ``kubernetes.client.ApiClient`` bound to ``api_server``."""
    with make_api_client(api_server) as client:
        yield client


@pytest.fixture
def core(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def podium_api_server() -> Iterator[ApiServer]:
    """Like ``api_server``, with the repository's CRDs (``crds/*.yaml``) already served."""
    with ApiServer(crd_paths=[REPO_ROOT / "crds"]) as server:
        yield server


def load_repo_crds(api_server: ApiServer) -> None:
    """Register the repository's ``crds/*.yaml`` in a running server, as ``kubectl apply`` would."""
    api_server.load_crds([REPO_ROOT / "crds"])
