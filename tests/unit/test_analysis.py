"""Canary analysis (pure): thresholds, and the same numbers from PromQL or from two scrapes."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from podium.api.deployment import AnalysisThresholds
from podium_operator.reconcile import analysis

CANARY = analysis.Subject("team-a", "iris", "sub-b")
STABLE = analysis.Subject("team-a", "iris", "sub-a")
LIMITS = AnalysisThresholds(max_error_rate=0.05, max_latency_ratio=1.5, min_requests=20)


def test_judge_thresholds() -> None:
    good = analysis.judge({"requests": 100, "errors": 1, "stableRequests": 900, "stableErrors": 0,
                           "latencyP99Seconds": 0.012, "stableLatencyP99Seconds": 0.010}, LIMITS, shadow=False)
    assert good.verdict == "Passed" and good.values["errorRate"] == 0.01 and good.values["latencyRatio"] == 1.2
    errors = analysis.judge({"requests": 100, "errors": 10}, LIMITS, shadow=False)
    assert errors.verdict == "Failed" and "maxErrorRate" in errors.message
    slow = analysis.judge({"requests": 100, "errors": 0, "latencyP99Seconds": 0.3,
                           "stableLatencyP99Seconds": 0.01}, LIMITS, shadow=False)
    assert slow.verdict == "Failed" and "maxLatencyRatio" in slow.message
    few = analysis.judge({"requests": 5, "errors": 5}, LIMITS, shadow=False)
    assert few.verdict == "Inconclusive" and "minRequests" in few.message
    cold = analysis.judge({"requests": 100, "errors": 0, "latencyP99Seconds": 0.0028,
                           "stableLatencyP99Seconds": 0.0008}, LIMITS, shadow=False)
    assert cold.verdict == "Passed" and cold.values["latencyRatio"] == 3.5  # 2.8 ms: below the 10 ms floor
    over = analysis.judge({"requests": 100, "errors": 0, "latencyP99Seconds": 0.08,
                           "stableLatencyP99Seconds": 0.0008}, LIMITS, shadow=False)
    assert over.verdict == "Failed" and over.values["latencyRatio"] == 100.0 and "80.0 ms vs 0.8 ms" in over.message
    extrapolated = analysis.judge({"requests": 99.96, "errors": 100.0}, LIMITS, shadow=False)
    assert extrapolated.values["errorRate"] == 1.0  # a share never exceeds 1
    nan = analysis.judge({"requests": 100, "errors": 0, "latencyP99Seconds": math.nan}, LIMITS, shadow=False)
    assert nan.verdict == "Passed" and nan.values["latencyRatio"] is None


def test_shadow_agreement() -> None:
    limits = AnalysisThresholds(min_requests=10, min_agreement=0.9)
    agree = analysis.judge({"requests": 50, "comparisons": 50, "agreements": 49}, limits, shadow=True)
    assert agree.verdict == "Passed" and agree.values["agreement"] == 0.98
    differ = analysis.judge({"requests": 50, "comparisons": 50, "agreements": 20}, limits, shadow=True)
    assert differ.verdict == "Failed" and "minAgreement" in differ.message
    unknown = analysis.judge({"requests": 50}, limits, shadow=True)
    assert unknown.verdict == "Inconclusive"


def test_queries_select_the_subject_and_escape_labels() -> None:
    q = analysis.queries(analysis.Subject("ns", "i", 'we"ird'), STABLE, 30, shadow=True)
    assert 'submission="we\\"ird"' in q["requests"] and "[30s]" in q["requests"]
    assert q["latencyP99Seconds"].startswith("histogram_quantile(0.99")
    assert 'outcome="agree"' in q["agreements"]


@given(st.lists(st.floats(0.0001, 5.0, allow_nan=False), min_size=1, max_size=300))
def test_histogram_quantile_brackets_the_exact_quantile(samples: list[float]) -> None:
    bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, math.inf]
    buckets = {b: float(sum(1 for s in samples if s <= b)) for b in bounds}
    estimate = analysis.histogram_quantile(0.99, buckets)
    exact = sorted(samples)[max(0, math.ceil(0.99 * len(samples)) - 1)]
    assert estimate is not None
    upper = next(b for b in bounds if b >= exact)
    lower = max([0.0] + [b for b in bounds if b < exact])
    assert lower - 1e-12 <= estimate <= upper + 1e-12  # in the bucket that holds the exact quantile


def scrape(requests: dict[tuple[str, str], float], buckets: dict[str, dict[float, float]]) -> analysis.Scrape:
    series: dict[str, list[tuple[dict[str, str], float]]] = {analysis.REQUESTS: [], f"{analysis.LATENCY}_bucket": []}
    for (submission, outcome), value in requests.items():
        series[analysis.REQUESTS].append(({"model_name": "iris", "submission": submission, "outcome": outcome}, value))
    for submission, counts in buckets.items():
        for bound, count in counts.items():
            labels = {"model_name": "iris", "submission": submission, "le": str(bound)}
            series[f"{analysis.LATENCY}_bucket"].append((labels, count))
    return series


def test_values_from_two_scrapes_are_deltas() -> None:
    before = scrape({("sub-b", "ok"): 10, ("sub-b", "error"): 0, ("sub-a", "ok"): 100},
                    {"sub-b": {0.01: 10, 0.1: 10, math.inf: 10}, "sub-a": {0.01: 100, math.inf: 100}})
    after = scrape({("sub-b", "ok"): 40, ("sub-b", "error"): 10, ("sub-a", "ok"): 400},
                   {"sub-b": {0.01: 10, 0.1: 50, math.inf: 50}, "sub-a": {0.01: 400, math.inf: 400}})
    values = analysis.values_from_scrapes(before, after, CANARY, STABLE)
    assert values["requests"] == 40 and values["errors"] == 10 and values["stableRequests"] == 300
    assert values["latencyP99Seconds"] is not None and 0.01 < values["latencyP99Seconds"] <= 0.1
    restarted = analysis.values_from_scrapes(after, before, CANARY, STABLE)  # counters went down: a restart
    assert restarted["requests"] == 10
