"""The PromQL the operator issues, answered by a real Prometheus scraping a real exporter on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from podium.api.deployment import AnalysisThresholds
from podium_operator.local.serving.prometheus import Prometheus, find_binary
from podium_operator.promql import Reader
from podium_operator.reconcile.analysis import LATENCY, REQUESTS, Subject, judge
from tests.helpers import wait_for

pytestmark = pytest.mark.slow  # starts Prometheus and waits for its scrapes

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@pytest.fixture
def prometheus(tmp_path: Path):
    binary = find_binary()
    if binary is None:
        pytest.skip("no prometheus binary (make venv installs Debian's prometheus)")
    server = Prometheus(tmp_path / "prometheus", binary).start()
    yield server
    server.stop()


def query(prometheus: Prometheus, promql: str) -> float | None:
    import json
    import urllib.parse
    import urllib.request

    from podium_operator.promql import instant_value

    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        return instant_value(json.loads(response.read()))


def test_the_operators_queries_read_what_the_predictors_counted(prometheus):
    registry = CollectorRegistry()
    labels = ["model_name", "submission", "version", "outcome"]
    requests = Counter(REQUESTS.removesuffix("_total"), "requests", labels, registry=registry)
    latency = Histogram(LATENCY, "latency", ["model_name", "submission", "version"], buckets=BUCKETS,
                        registry=registry)
    for submission in ("stable", "canary"):
        for outcome in ("ok", "error", "invalid"):
            requests.labels("iris", submission, "1", outcome)
        latency.labels("iris", submission, "1")
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        prometheus.set_targets([(f"127.0.0.1:{port}", {"namespace": "team-a", "inference_service": "iris",
                                                       "revision": "r1", "job": "podium-predictor"})])
        wait_for(lambda: query(prometheus, f'sum({REQUESTS}{{namespace="team-a"}})') == 0.0, timeout=30,
                 what="the first scrapes")
        time.sleep(2.5)
        requests.labels("iris", "canary", "1", "ok").inc(90)
        requests.labels("iris", "canary", "1", "error").inc(10)
        requests.labels("iris", "stable", "1", "ok").inc(400)
        for _ in range(100):
            latency.labels("iris", "canary", "1").observe(0.02)
        for _ in range(400):
            latency.labels("iris", "stable", "1").observe(0.004)
        wait_for(lambda: query(prometheus, f'sum({REQUESTS}{{namespace="team-a",submission="canary"}})') == 100.0,
                 timeout=30, what="the increments scraped")
        time.sleep(2.5)
        reader = Reader(prometheus.url)
        candidate, stable = Subject("team-a", "iris", "canary"), Subject("team-a", "iris", "stable")
        values = asyncio.run(reader.measure(candidate, stable, 30, shadow=False, metrics_url=None, key=("u", "s")))
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert values is not None
    # increase() extrapolates a little past the samples; ratios of counts in one window are exact
    assert values["requests"] == pytest.approx(100, rel=0.2)
    assert values["errors"] / values["requests"] == pytest.approx(0.1, rel=1e-3)
    assert values["stableRequests"] == pytest.approx(400, rel=0.2) and values["stableErrors"] == 0.0
    assert 0.01 < values["latencyP99Seconds"] <= 0.025  # every canary answer took 20 ms
    assert 0.0025 < values["stableLatencyP99Seconds"] <= 0.005
    judged = judge(values, AnalysisThresholds(max_error_rate=0.05, max_latency_ratio=1.5, min_requests=20),
                   shadow=False)
    assert judged.verdict == "Failed" and "error rate 0.100" in judged.message and "p99 latency" in judged.message
    unknown = asyncio.run(reader.measure(Subject("team-a", "iris", "nobody"), stable, 30, shadow=False,
                                         metrics_url=None, key=("u", "t")))
    assert unknown is not None and unknown["requests"] == 0.0 and unknown["latencyP99Seconds"] is None
