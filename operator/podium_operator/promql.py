"""Live serving metrics for canary analysis: PromQL over Prometheus' HTTP API, or direct scrapes without one.

What the servers answer is read within limits (size, time, finite numbers only); a value that cannot be read
is ``None`` and the analysis treats it as unknown, never as good.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from podium_operator.reconcile.analysis import Scrape, Subject, queries, values_from_scrapes

logger = logging.getLogger(__name__)
MAX_RESPONSE_BYTES = 4 << 20
TIMEOUT_SECONDS = 5.0
Values = dict[str, float | None]


class MetricsUnavailable(Exception):
    """Prometheus or the predictors could not be read (the step waits; it is not judged)."""


async def _get(session: aiohttp.ClientSession, url: str, **params: str) -> bytes:
    try:
        async with session.get(url, params=params or None) as response:
            body = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                raise MetricsUnavailable(f"{url}: the answer is larger than {MAX_RESPONSE_BYTES} bytes")
            if response.status != 200:
                raise MetricsUnavailable(f"{url}: HTTP {response.status}: {body[:200].decode(errors='replace')}")
            return body
    except (TimeoutError, aiohttp.ClientError) as error:
        raise MetricsUnavailable(f"{url}: {type(error).__name__}: {error}") from error


def instant_value(answer: Any) -> float | None:
    """The one number of an instant-vector or scalar answer; ``None`` for no series or a non-finite value."""
    data = answer.get("data") if isinstance(answer, dict) and answer.get("status") == "success" else None
    if not isinstance(data, dict):
        raise MetricsUnavailable(f"Prometheus answered {str(answer)[:200]}")
    result = data.get("result")
    if data.get("resultType") == "scalar" and isinstance(result, list):
        result = [{"value": result}]
    if not isinstance(result, list) or not result:
        return None
    sample = result[0].get("value") if isinstance(result[0], dict) else None
    try:
        value = float(sample[1]) if isinstance(sample, list) and len(sample) == 2 else math.nan
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


COUNTS = ("requests", "errors", "stableRequests", "stableErrors", "comparisons", "agreements")


def parse_scrape(text: str) -> Scrape:
    """Prometheus' text format -> series name -> [(labels, value)] (finite values only)."""
    series: dict[str, list[tuple[Mapping[str, str], float]]] = defaultdict(list)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if math.isfinite(sample.value):
                    series[sample.name].append((dict(sample.labels), float(sample.value)))
    except ValueError as error:
        raise MetricsUnavailable(f"unreadable metrics: {error}") from error
    return series


class Reader:
    """Reads the analysis values; ``source`` says from where (shown in the ModelDeployment's status)."""

    def __init__(self, prometheus_url: str | None) -> None:
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.source: Literal["prometheus", "direct"] = "prometheus" if self.prometheus_url else "direct"
        self._scrapes: dict[tuple[str, str], Scrape] = {}  # (deployment uid, step key) -> first scrape

    async def measure(self, candidate: Subject, stable: Subject, window_seconds: int, *, shadow: bool,
                      metrics_url: str | None, key: tuple[str, str]) -> Values | None:
        """The values over the window; ``None`` when a direct scrape has only its first sample yet."""
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            if self.prometheus_url:
                return await self._query(session, queries(candidate, stable, window_seconds, shadow=shadow))
            if not metrics_url:
                raise MetricsUnavailable("no Prometheus is configured and the InferenceService has no URL to scrape")
            scrape = parse_scrape((await _get(session, metrics_url)).decode(errors="replace"))
        before = self._scrapes.get(key)
        if before is None:
            self._scrapes = {k: v for k, v in self._scrapes.items() if k[0] != key[0]}  # one per deployment
            self._scrapes[key] = scrape
            return None
        return values_from_scrapes(before, scrape, candidate, stable)

    async def _query(self, session: aiohttp.ClientSession, promql: dict[str, str]) -> Values:
        import json

        async def one(name: str, query: str) -> tuple[str, float | None]:
            body = await _get(session, f"{self.prometheus_url}/api/v1/query", query=query)
            try:
                value = instant_value(json.loads(body))
            except json.JSONDecodeError as error:
                raise MetricsUnavailable(f"Prometheus answered no JSON: {error}") from error
            return name, (0.0 if value is None and name in COUNTS else value)

        return dict(await asyncio.gather(*(one(name, query) for name, query in promql.items())))
