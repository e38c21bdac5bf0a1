"""Benchmark Podium's predictor against a minimal KServe scikit-learn server, over loopback.

    python benchmarks/bench_serving.py [--requests 3000] [--clients 8] [--rows 1]

One scikit-learn model (LogisticRegression on iris) is served twice, each server in its own process with
one worker: (a) the baseline, a minimal ``kserve.Model`` doing what KServe's stock sklearn server does
(V1 ``instances`` -> ``np.array`` -> ``model.predict``, KServe's default flags), and (b) ``python -m
podium.serving`` on the same model saved with ``save_submission`` (defaults: ``--runtime auto``, so the
artifact's checked ONNX export answers; labels plus probabilities). The same client code drives both:
keep-alive HTTP/1.1 connections on asyncio, sequential (1 client) then ``--clients`` concurrent ones,
a fixed number of requests each (bounded, no time-based loops). It prints req/s, p50 and p99 side by side
and the ratios podium/baseline (req/s: higher is better; latency: lower is better).

:func:`load` and :func:`Stats` are the reusable hook: ``load(url, body, clients=8, requests=N,
during=callback)`` counts failed requests (non-2xx or a broken connection) while ``during`` runs, e.g. a
10-step canary swap, and the same call against a router URL and a predictor URL gives router overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASELINE = textwrap.dedent(
    """
    import pickle, sys
    import kserve
    from kserve.utils.utils import get_predict_input, get_predict_response

    class Baseline(kserve.Model):  # what kserve's sklearnserver SKLearnModel does with PREDICT_PROBA unset
        def load(self):
            with open(sys.argv[1], "rb") as handle:
                self.model = pickle.load(handle)
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            instances = get_predict_input(payload)
            return get_predict_response(payload, self.model.predict(instances), self.name)

    model = Baseline("iris")
    model.load()
    kserve.ModelServer().start([model])
    """
)


@dataclass
class Stats:
    """Latencies (seconds) of the answered requests, failures, and the wall time of the whole run."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")


async def _client(host: str, port: int, request: bytes, count: int, stats: Stats) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            start = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                ok = head[9:10] == b"2"
            except (OSError, asyncio.IncompleteReadError, StopIteration):
                stats.failures += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            if ok:
                stats.latencies.append(time.perf_counter() - start)
            else:
                stats.failures += 1
    finally:
        writer.close()


async def _load(url: str, body: bytes, clients: int, requests: int,
                during: Callable[[], Awaitable[None]] | None) -> Stats:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (f"POST {parts.path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(body)}\r\n\r\n").encode() + body
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    for _ in range(int(timeout / 0.2)):  # bounded: at most `timeout` seconds
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def start(argv: list[str], ready: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(ready, process)
    except BaseException:
        process.kill()
        raise
    return process


def build(scratch: Path) -> tuple[Path, Path, list[list[float]]]:
    import pickle

    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from podium.artifacts import save_submission

    data = load_iris()
    labels = np.asarray(["setosa", "versicolor", "virginica"])[data.target]
    model = LogisticRegression(max_iter=500).fit(data.data, labels)
    (scratch / "baseline.pkl").write_bytes(pickle.dumps(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_submission(model, scratch / "artifact", example_data=data.data)
    return scratch / "baseline.pkl", scratch / "artifact", data.data.tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per scenario and server")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1, help="instances per request")
    parser.add_argument("--runtime", default="auto", choices=["auto", "native", "onnx"], help="Podium's --runtime")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="podium-bench-serving-") as scratch:
        pickled, artifact, rows = build(Path(scratch))
        body = json.dumps({"instances": rows[50: 50 + args.rows]}).encode()
        (Path(scratch) / "baseline.py").write_text(BASELINE)
        ports = {"baseline": free_port(), "podium": free_port()}
        servers = {
            "baseline": start([sys.executable, str(Path(scratch) / "baseline.py"), str(pickled),
                               "--http_port", str(ports["baseline"]), "--grpc_port", str(free_port())],
                              f"http://127.0.0.1:{ports['baseline']}/v1/models/iris"),
            "podium": start([sys.executable, "-m", "podium.serving", "--model_name", "iris",
                             "--model_dir", str(artifact), "--http_port", str(ports["podium"]),
                             "--http_host", "127.0.0.1", "--runtime", args.runtime,
                             "--class_labels", '["setosa", "versicolor", "virginica"]'],
                            f"http://127.0.0.1:{ports['podium']}/v1/models/iris"),
        }
        try:
            results = {}
            for clients in (1, args.clients):
                for name, port in ports.items():
                    url = f"http://127.0.0.1:{port}/v1/models/iris:predict"
                    load(url, body, clients=clients, requests=min(300, args.requests))  # warm-up
                    results[name, clients] = load(url, body, clients=clients, requests=args.requests)
        finally:
            for process in servers.values():
                process.terminate()
            for process in servers.values():
                process.wait(timeout=30)
    print(f"V1 :predict, {args.rows} instance(s) per request, {args.requests} requests per scenario, "
          f"1 worker per server, {os.cpu_count()} CPUs shared by servers and client")
    print(table(results, (1, args.clients)))
    return 0


def table(results: dict[tuple[str, int], Stats], scenarios: tuple[int, ...]) -> str:
    header = (f"{'clients':>7} | {'baseline req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | {'podium req/s':>12} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'fail':>4} | {'req/s ratio':>11} {'p50 ratio':>9} {'p99 ratio':>9}")
    lines = [header, "-" * len(header)]
    for clients in scenarios:
        base, ours = results["baseline", clients], results["podium", clients]
        lines.append(
            f"{clients:>7} | {base.rate:>14,.0f} {base.percentile(50) * 1e3:>7.2f} {base.percentile(99) * 1e3:>7.2f} | "
            f"{ours.rate:>12,.0f} {ours.percentile(50) * 1e3:>7.2f} {ours.percentile(99) * 1e3:>7.2f} "
            f"{base.failures + ours.failures:>4} | {ours.rate / base.rate:>11.2f} "
            f"{ours.percentile(50) / base.percentile(50):>9.2f} {ours.percentile(99) / base.percentile(99):>9.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
