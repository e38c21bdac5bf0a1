"""The predictor's Prometheus series (serving contract), in prometheus_client's default registry.

KServe 0.21 serves ``prometheus_client.REGISTRY`` on ``GET /metrics`` of the model server's own port
(``kserve.protocol.rest.server.metrics_handler``), so registering here is all it takes for them to appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

Outcome = Literal["ok", "error", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "invalid")
LABELS = ("model_name", "submission", "version")
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class Series:
    requests: Counter
    seconds: Histogram


def series(registry: CollectorRegistry = REGISTRY) -> Series:
    """The two metric families, created once per registry (a second model in the process reuses them)."""
    found = getattr(registry, "_podium_predictor_series", None)
    if found is None:
        found = Series(
            requests=Counter(
                "podium_predictor_requests_total",
                "Predict requests by outcome: ok, error (the model or server failed), invalid (input refused)",
                [*LABELS, "outcome"],
                registry=registry,
            ),
            seconds=Histogram(
                "podium_predictor_request_seconds",
                "Whole predict time, decoding the request and encoding the answer included",
                list(LABELS),
                buckets=BUCKETS,
                registry=registry,
            ),
        )
        registry._podium_predictor_series = found  # type: ignore[attr-defined]
    return found


class RequestMetrics:
    """The label children of one served model, resolved once: ``labels()`` per request costs a lock and a dict."""

    def __init__(self, model_name: str, submission: str, version: str, registry: CollectorRegistry = REGISTRY):
        families = series(registry)
        values = (model_name, submission, version)
        # every outcome exists from the start at 0, so a scrape sees the series before the first error
        self._counts = {outcome: families.requests.labels(*values, outcome) for outcome in OUTCOMES}
        self._seconds = families.seconds.labels(*values)

    def observe(self, outcome: Outcome, seconds: float) -> None:
        self._counts[outcome].inc()
        self._seconds.observe(seconds)

    def count(self, outcome: Outcome) -> None:
        """A request refused before it reached the model: counted, not timed."""
        self._counts[outcome].inc()
