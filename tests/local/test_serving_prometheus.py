"""Local serving with a real Prometheus (Debian's ``/usr/bin/prometheus``): it scrapes predictors and the
controller every second, and PromQL over its HTTP API sees the requests."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.objectstore import ObjectStore
from podium_operator.local.serving.controller import ServingController
from podium_operator.local.serving.prometheus import Prometheus, find_binary
from podium_operator.local.serving.storage import S3Access
from podium_operator.local.serving.vendor_crds import kserve_crds
from tests.local.conftest import make_api_client
from tests.local.test_serving_controller import ECHO, Serving, condition, isvc, model, predict

BINARY = find_binary()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(BINARY is None, reason="no prometheus binary (apt: prometheus)")]


def query(prometheus: Prometheus, promql: str) -> float | None:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        result = json.loads(response.read())["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Serving, Prometheus]]:
    import kubernetes.client

    assert BINARY is not None
    prometheus = Prometheus(tmp_path / "prometheus", BINARY).start()
    try:
        with ApiServer() as api, ObjectStore(bucket="prom") as store:
            api.call(lambda: [api.emulator.apply_crd(crd) for crd in kserve_crds()])
            s3 = S3Access(store.endpoint, store.access_key, store.secret_key, store.region)
            with ServingController(api.url, tmp_path / "serving", s3, command=ECHO, prometheus=prometheus) as c, \
                    make_api_client(api) as client:
                yield Serving(api, store, c, kubernetes.client.CustomObjectsApi(client)), prometheus
    finally:
        prometheus.stop()


def test_prometheus_scrapes_predictors_and_the_router_metrics(serving: tuple[Serving, Prometheus]) -> None:
    s, prometheus = serving
    uri = s.artifact("prom/v1", label="a")
    s.create(isvc("prom", "Standard", {"model": model(uri, "sub1")}))
    url = s.wait("prom", lambda st: condition(st, "Ready") == "True")["status"]["url"]
    assert [predict(url, "prom")[0] for _ in range(7)] == [200] * 7
    predictor = ('sum(podium_predictor_requests_total{job="podium-predictor",namespace="default",'
                 'inference_service="prom",revision="prom-predictor",submission="sub1"})')
    router = 'sum(podium_router_requests_total{job="podium-serving",inference_service="prom",code="200"})'
    deadline = time.monotonic() + 60
    while (query(prometheus, predictor), query(prometheus, router)) != (7.0, 7.0):
        assert time.monotonic() < deadline, (query(prometheus, predictor), query(prometheus, router))
        time.sleep(0.5)
    # The predictor got traffic only once Prometheus had scraped it: its first sample is 0, so increase()
    # over a window covering the start counts every request.
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode(
        {"query": 'podium_predictor_requests_total{inference_service="prom"}[5m]'})
    with urllib.request.urlopen(url, timeout=10) as response:
        values = json.loads(response.read())["data"]["result"][0]["values"]
    assert float(values[0][1]) == 0.0 and float(values[-1][1]) == 7.0
