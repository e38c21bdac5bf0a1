"""Operator throughput and latency in local mode, with predictions-only submissions.

    python benchmarks/bench_operator.py --submissions 100 1000

For each N: submission-to-scored latency p50/p95 (from the Submission's own timings, so client
polling is excluded), the score Job's own run time (model/scoring compute) for comparison, the
operator overhead = latency − Job run time, throughput, and the operator's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podium.client import ModelPlayground  # noqa: E402
from podium_operator.local.cluster import LocalCluster  # noqa: E402
from tests.integration.holdouts import iris_playground, iris_split, upload_holdout  # noqa: E402


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run(n: int, parallel: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as state, LocalCluster(
        Path(state), job_parallelism=parallel
    ) as cluster:
        for key, value in cluster.environment().items():
            if key == "KUBECONFIG" or key.startswith(("AWS_", "PODIUM_")):
                os.environ[key] = value
        _, X_test, _, y_test = iris_split()
        holdout = upload_holdout(X_test, y_test, "s3://podium/holdouts/iris")
        playground = ModelPlayground("iris")
        playground.api.create_namespaced_custom_object(
            "podium.dev", "v1alpha1", "default", "playgrounds", iris_playground("iris", *holdout))
        playground.wait_ready()
        names = [f"b{index:05d}" for index in range(n)]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda name: playground.submit_predictions(np.asarray(y_test), name=name), names))
        finished = playground.wait_for(*names, timeout=60 + 3 * n)
        elapsed = time.monotonic() - started
        assert cluster.operator_process is not None
        rss = _peak_rss_mb(cluster.operator_process.pid)
        phases = {s["status"]["phase"] for s in finished}
        latency = np.array([s["status"]["timings"]["durationSeconds"] for s in finished])
        return {"n": n, "scored": sum(s["status"]["phase"] == "Evaluated" for s in finished),
                "phases": ",".join(sorted(phases)), "p50": float(np.percentile(latency, 50)),
                "p95": float(np.percentile(latency, 95)), "throughput": n / elapsed, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--parallel", type=int, default=4, help="job runner parallelism")
    args = parser.parse_args()
    print(f"{'N':>6} {'scored':>7} {'p50 s':>7} {'p95 s':>7} {'subs/s':>7} {'RSS MB':>7}  targets: p50<1s, RSS<300MB")
    for n in args.submissions:
        r = run(n, args.parallel)
        print(f"{r['n']:>6} {r['scored']:>7} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['throughput']:>7.2f} "
              f"{r['rss_mb']:>7.0f}  ({r['phases']})", flush=True)


if __name__ == "__main__":
    main()
