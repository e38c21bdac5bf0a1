"""Integration fixtures: the whole local cluster (API emulator, object store, job runner, real operator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from podium_operator.local.cluster import LocalCluster
from tests.chart import not_granted

OPERATOR_CLIENTS = ("kopf", "podium-operator")  # User-Agent products of the operator's own requests


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path, monkeypatch)


def running_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[LocalCluster]:
    """A LocalCluster (``options`` as LocalCluster takes them) checked afterwards: RBAC, no operator traceback."""
    with LocalCluster(tmp_path / "cluster", **options) as running:
        # The SDK and podium.storage in this process talk to this cluster and its object store.
        for key, value in running.environment().items():
            if key == "KUBECONFIG" or key.startswith(("AWS_", "PODIUM_")):
                monkeypatch.setenv(key, value)
        yield running
        assert running.api is not None
        calls = running.api.call(lambda: set(running.api.emulator.access_log))  # type: ignore[union-attr]
        operator_calls = [call for client, call in calls if client in OPERATOR_CLIENTS]
        assert not_granted(operator_calls) == [], "the chart's ClusterRole lacks what the operator used"
        log = running.state_dir / "operator.log"
        if log.exists():
            assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-4000:]


@pytest.fixture
def custom_objects(cluster: LocalCluster) -> kubernetes.client.CustomObjectsApi:
    config = kubernetes.client.Configuration()
    assert cluster.api is not None
    config.host = cluster.api.url
    return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))


@pytest.fixture
def core(cluster: LocalCluster) -> kubernetes.client.CoreV1Api:
    config = kubernetes.client.Configuration()
    assert cluster.api is not None
    config.host = cluster.api.url
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))

