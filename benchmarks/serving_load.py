"""The load client of bench_serving.py: keep-alive HTTP/1.1 on asyncio, bounded by count (and time).

``python benchmarks/serving_load.py SPEC`` runs it in a process of its own (so it never shares the interpreter
of the cluster it measures) and prints one JSON line; :func:`load` and :class:`Stats` are the in-process hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np


@dataclass
class Stats:
    """Latencies (seconds) of the answered requests, failures, and the wall time of the whole run."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0
    codes: Counter[int] = field(default_factory=Counter)  # every answer's status; 0 = no answer at all
    submissions: Counter[str] = field(default_factory=Counter)  # x-podium-submission of the 200s

    @property
    def total(self) -> int:
        return sum(self.codes.values())

    def record(self, status: int, submission: str, seconds: float) -> None:
        self.codes[status] += 1
        if status == 200:
            self.latencies.append(seconds)
            self.submissions[submission] += 1
        else:
            self.failures += 1

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


def _head(head: bytes) -> tuple[int, int, str]:
    """Status, content length and ``x-podium-submission`` of an HTTP/1.1 answer's head."""
    length, submission = -1, ""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"x-podium-submission":
            submission = value.strip().decode()
    if length < 0:
        raise ValueError("no content-length")
    return int(head[9:12]), length, submission


async def _client(host: str, port: int, request: bytes, count: int, stats: Stats,
                  going: Callable[[], bool] = lambda: True, timeout: float | None = None) -> None:
    """Up to ``count`` requests on one keep-alive connection while ``going()``; a broken connection is a
    failed request (status 0), then a new connection."""
    connection = None
    for _ in range(count):
        if not going():
            break
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                if connection is None:
                    connection = await asyncio.open_connection(host, port)
                reader, writer = connection
                writer.write(request)
                status, length, submission = _head(await reader.readuntil(b"\r\n\r\n"))
                await reader.readexactly(length)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            stats.record(0, "", 0.0)
            if connection is not None:
                connection[1].close()
            connection = None
            continue
        stats.record(status, submission, time.perf_counter() - start)
    if connection is not None:
        connection[1].close()


def _request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return host, port, (f"POST {parts.path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(body)}\r\n\r\n").encode() + body


async def _load(url: str, body: bytes, clients: int, requests: int,
                during: Callable[[], Awaitable[None]] | None) -> Stats:
    host, port, request = _request(url, body)
    stats = Stats()
    share = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    start = time.perf_counter()
    tasks = [_client(host, port, request, n, stats) for n in share if n]
    await asyncio.gather(*tasks, *([during()] if during is not None else []))
    stats.seconds = time.perf_counter() - start
    return stats


def load(url: str, body: bytes, *, clients: int = 1, requests: int = 1000,
         during: Callable[[], Awaitable[None]] | None = None) -> Stats:
    """POST ``body`` to ``url`` ``requests`` times over ``clients`` keep-alive connections (loopback);
    ``during`` (a coroutine function) runs alongside, e.g. steps of a canary swap."""
    return asyncio.run(_load(url, body, clients, requests, during))


def load_worker(spec_text: str) -> int:
    """``sequential``: each URL in turn, one client, in alternating blocks; ``swap``: ``clients`` until stdin
    closes and at least ``at_least`` requests were sent, or ``max_seconds``. Prints one JSON line."""
    spec = json.loads(spec_text)
    body = spec["body"].encode()
    if spec["mode"] == "sequential":
        print(json.dumps(asyncio.run(_alternate(spec["urls"], body, spec["requests"], spec["rounds"]))))
        return 0
    stats = asyncio.run(_until_stopped(spec["url"], body, spec["clients"], spec["at_least"], spec["max_seconds"]))
    print(json.dumps({"codes": stats.codes, "submissions": stats.submissions, "seconds": stats.seconds,
                      "p50": stats.percentile(50), "p99": stats.percentile(99)}))
    return 0


async def _alternate(urls: list[str], body: bytes, requests: int, rounds: int) -> dict[str, Any]:
    for url in urls:  # warm-up: connections, the predictor's first requests
        await _load(url, body, 1, min(200, requests), None)
    out: dict[str, Any] = {url: {"latencies": [], "failures": 0} for url in urls}
    for turn in range(rounds):  # alternating blocks, so neither path gets the quieter moments of a shared machine
        for url in urls if turn % 2 == 0 else urls[::-1]:
            stats = await _load(url, body, 1, max(1, requests // rounds), None)
            out[url]["latencies"] += stats.latencies
            out[url]["failures"] += stats.failures
    return out


async def _until_stopped(url: str, body: bytes, clients: int, at_least: int, max_seconds: float) -> Stats:
    host, port, request = _request(url, body)
    stats, stop, loop = Stats(), asyncio.Event(), asyncio.get_running_loop()

    def wait_for_eof() -> None:
        sys.stdin.read()
        with contextlib.suppress(RuntimeError):  # (the loop may be gone: the time bound came first)
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    deadline = time.monotonic() + max_seconds

    def going() -> bool:
        return time.monotonic() < deadline and not (stop.is_set() and stats.total >= at_least)

    async def announce() -> None:  # the parent starts the swap once the load runs
        while going() and stats.total < 50:
            await asyncio.sleep(0.02)
        print("started", flush=True)

    start = time.perf_counter()
    await asyncio.gather(announce(), *(_client(host, port, request, 10**8, stats, going, timeout=30.0)
                                       for _ in range(clients)))
    stats.seconds = time.perf_counter() - start
    return stats


def spawn(spec: dict[str, Any]) -> subprocess.Popen[str]:
    """:func:`load_worker` in a process of its own (stdin open: closing it tells a swap load to finish)."""
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), json.dumps(spec)],
                            cwd=Path(__file__).resolve().parents[1], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


if __name__ == "__main__":
    sys.exit(load_worker(sys.argv[1]))
