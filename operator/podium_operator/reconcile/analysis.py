"""Canary analysis (pure): live metrics of a candidate and the stable model -> Passed, Failed or Inconclusive.

The values come either from Prometheus (PromQL over its HTTP API, :func:`queries`) or, when none is
configured, from two scrapes of the predictors' ``/metrics`` (:func:`values_from_scrapes`, which computes
the same numbers from counter and histogram deltas the way ``increase`` and ``histogram_quantile`` do).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from podium.api.deployment import AnalysisThresholds

REQUESTS = "podium_predictor_requests_total"
LATENCY = "podium_predictor_request_seconds"
SHADOW = "podium_router_shadow_requests_total"
Verdict = Literal["Passed", "Failed", "Inconclusive"]


@dataclass(frozen=True)
class Subject:
    """Whose metrics: the InferenceService's predictor serving ``submission``."""

    namespace: str
    inference_service: str
    submission: str


def _selector(subject: Subject, **extra: str) -> str:
    labels = {"namespace": subject.namespace, "model_name": subject.inference_service,
              "submission": subject.submission, **extra}
    return ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def queries(candidate: Subject, stable: Subject, window_seconds: int, *, shadow: bool) -> dict[str, str]:
    """The PromQL for each value over the last ``window_seconds`` (at least 2 scrapes' worth)."""
    window = f"[{max(int(window_seconds), 2)}s]"

    def requests(subject: Subject, **extra: str) -> str:
        return f"sum(increase({REQUESTS}{{{_selector(subject, **extra)}}}{window}))"

    def p99(subject: Subject) -> str:
        return f"histogram_quantile(0.99, sum by (le) (increase({LATENCY}_bucket{{{_selector(subject)}}}{window})))"

    found = {
        "requests": requests(candidate),
        "errors": requests(candidate, outcome="error"),
        "stableRequests": requests(stable),
        "stableErrors": requests(stable, outcome="error"),
        "latencyP99Seconds": p99(candidate),
        "stableLatencyP99Seconds": p99(stable),
    }
    if shadow:
        router = (f'namespace="{_escape(candidate.namespace)}",inference_service="{_escape(candidate.inference_service)}",'
                  f'submission="{_escape(candidate.submission)}"')
        found["comparisons"] = f"sum(increase({SHADOW}{{{router}}}{window}))"
        found["agreements"] = f'sum(increase({SHADOW}{{{router},outcome="agree"}}{window}))'
    return found


# One scrape: series name -> list of (labels, value); what the I/O layer parses from the text format.
Scrape = Mapping[str, list[tuple[Mapping[str, str], float]]]


def _matches(labels: Mapping[str, str], subject: Subject, extra: Mapping[str, str]) -> bool:
    wanted = {"model_name": subject.inference_service, "submission": subject.submission, **extra}
    return all(labels.get(key) == value for key, value in wanted.items())


def _total(scrape: Scrape, name: str, subject: Subject, **extra: str) -> float:
    return sum(value for labels, value in scrape.get(name, []) if _matches(labels, subject, extra))


def _buckets(scrape: Scrape, subject: Subject) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for labels, value in scrape.get(f"{LATENCY}_bucket", []):
        if _matches(labels, subject, {}) and "le" in labels:
            bound = float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + value
    return buckets


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative bucket counts (linear within a bucket)."""
    ordered = sorted(buckets.items())
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # in the +Inf bucket: the highest finite bound, as Prometheus answers
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


def values_from_scrapes(before: Scrape, after: Scrape, candidate: Subject, stable: Subject) -> dict[str, float | None]:
    """The same values as :func:`queries`, from two scrapes (a counter that went down restarted: count it from 0)."""

    def delta(name: str, subject: Subject, **extra: str) -> float:
        now, then = _total(after, name, subject, **extra), _total(before, name, subject, **extra)
        return now - then if now >= then else now

    def p99(subject: Subject) -> float | None:
        now, then = _buckets(after, subject), _buckets(before, subject)
        restarted = any(now.get(bound, 0.0) < count for bound, count in then.items())
        return histogram_quantile(0.99, now if restarted else {b: c - then.get(b, 0.0) for b, c in now.items()})

    return {
        "requests": delta(REQUESTS, candidate), "errors": delta(REQUESTS, candidate, outcome="error"),
        "stableRequests": delta(REQUESTS, stable), "stableErrors": delta(REQUESTS, stable, outcome="error"),
        "latencyP99Seconds": p99(candidate), "stableLatencyP99Seconds": p99(stable),
    }


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    values: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    message: str = ""


def _ratio(numerator: float | None, denominator: float | None, *, share: bool = False) -> float | None:
    """``share``: a part of a whole, at most 1 (``increase()`` extrapolates each series a little differently)."""
    if numerator is None or denominator is None or not denominator > 0:
        return None
    return min(1.0, numerator / denominator) if share else numerator / denominator


def judge(raw: Mapping[str, float | None], thresholds: AnalysisThresholds, *, shadow: bool) -> Judgement:
    """Compare the values with the thresholds; too little traffic is Inconclusive, never Passed."""
    values: dict[str, float | None] = {key: (None if v is None or not math.isfinite(v) else round(v, 6))
                                       for key, v in raw.items()}
    requests = values.get("requests") or 0.0
    values["errorRate"] = _ratio(values.get("errors") or 0.0, requests, share=True) if requests > 0 else None
    values["stableErrorRate"] = _ratio(values.get("stableErrors") or 0.0, values.get("stableRequests"), share=True)
    candidate_p99, stable_p99 = values.get("latencyP99Seconds"), values.get("stableLatencyP99Seconds")
    values["latencyRatio"] = _ratio(candidate_p99, stable_p99)
    if shadow and "comparisons" in values:
        values["agreement"] = _ratio(values.get("agreements") or 0.0, values.get("comparisons"), share=True)
    values = {key: (None if v is None else round(v, 6)) for key, v in values.items()}
    reasons: list[str] = []
    error_rate, ratio, agreement = values["errorRate"], values["latencyRatio"], values.get("agreement")
    if error_rate is not None and error_rate > thresholds.max_error_rate:
        reasons.append(f"error rate {error_rate:.3f} > maxErrorRate {thresholds.max_error_rate}")
    judged = _ratio(candidate_p99, max(stable_p99, thresholds.latency_floor_seconds)) if stable_p99 else None
    if ratio is not None and judged is not None and judged > thresholds.max_latency_ratio:
        reasons.append(f"p99 latency {ratio:.2f}x the stable model's ({1e3 * (candidate_p99 or 0):.1f} ms vs "
                       f"{1e3 * (stable_p99 or 0):.1f} ms) > maxLatencyRatio {thresholds.max_latency_ratio}")
    needs_agreement = shadow and thresholds.min_agreement is not None
    if needs_agreement and agreement is not None and agreement < (thresholds.min_agreement or 0.0):
        reasons.append(f"agreement {agreement:.3f} with the stable model < minAgreement {thresholds.min_agreement}")
    if reasons and requests >= max(1, thresholds.min_requests):
        return Judgement("Failed", values, reasons, "; ".join(reasons))
    if requests < thresholds.min_requests:
        return Judgement("Inconclusive", values, [],
                         f"{int(requests)} of the {thresholds.min_requests} requests the analysis needs (minRequests)")
    if needs_agreement and agreement is None:
        return Judgement("Inconclusive", values, [], "no mirrored requests compared yet (agreement unknown)")
    return Judgement("Passed", values, [], "within every threshold")
