"""The local cluster serves InferenceServices: KServe's CRDs, the serving controller and Prometheus start and
stop with it."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from podium_operator.local.cluster import LocalCluster
from tests.local.conftest import make_api_client
from tests.local.test_serving_controller import (
    ECHO,
    GROUP,
    PLURAL,
    VERSION,
    Serving,
    condition,
    isvc,
    model,
    predict,
)

pytestmark = pytest.mark.slow


def test_local_cluster_serves_inference_services(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", operator=False) as cluster:
        assert cluster.api is not None and cluster.store is not None and cluster.serving is not None
        cluster.serving.command = ECHO  # (until python -m podium.serving lands)
        with make_api_client(cluster.api) as client:
            serving = Serving(cluster.api, cluster.store, cluster.serving, kubernetes.client.CustomObjectsApi(client))
            uri = serving.artifact("c/v1", label="z")
            serving.create(isvc("iris", "Knative", {"model": model(uri)}))
            url = serving.wait("iris", lambda s: condition(s, "Ready") == "True")["status"]["url"]
            assert predict(url, "iris") == (200, ["z"])
            listed: Any = serving.objects.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
            assert [item["metadata"]["name"] for item in listed["items"]] == ["iris"]
        prometheus = cluster.prometheus
        if prometheus is not None:
            assert cluster.describe()["prometheus"] == prometheus.url
            with urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=5) as response:
                assert response.status == 200
            operator = cluster.start_operator()  # the operator is told where Prometheus is
            environ = Path(f"/proc/{operator.pid}/environ").read_bytes().split(b"\0")
            assert f"PODIUM_PROMETHEUS_URL={prometheus.url}".encode() in environ
    if prometheus is not None:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=2)
