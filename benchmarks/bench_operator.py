"""Operator throughput and latency in local mode, with predictions-only submissions.

    python benchmarks/bench_operator.py --submissions 100 1000

Two measurements, side by side:
- one at a time (``--sequential`` submissions, default 10): submission-to-scored latency p50/p95, from
  the moment the client's create call returned to the Submission's ``evaluatedAt``, next to the score
  Job's own command run directly, as a fresh process, on the same inputs in the same object store (the
  baseline: what the step costs on its own; the ratio is latency / baseline);
- a burst of N submitted at once: all scored?, throughput, latency p50/p95 (queueing included) and the
  operator's peak RSS (VmHWM).
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


def score_job_alone(predictions_uri: str, labels_uri: str, scratch: Path) -> float:
    """Wall time of one score Job's command run directly (imports, downloads, scoring, uploads)."""
    import subprocess

    from podium.evaluation.wire import ScoreArgs

    args = ScoreArgs(predictions=predictions_uri, labels=labels_uri, task="classification",
                     class_labels=["setosa", "versicolor", "virginica"],
                     results="s3://podium/bench/alone/result.json",
                     private="s3://podium/podium-private/bench/alone.json",
                     termination_log=scratch / "termination-log")
    command = [sys.executable, "-m", "podium.evaluation.score", *args.to_argv()]
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    return time.monotonic() - started


def _latencies(submissions: list[dict], created: dict[str, float]) -> np.ndarray:
    return np.array([_seconds(s["status"]["timings"]["evaluatedAt"]) - created[s["metadata"]["name"]]
                     for s in submissions])


def run(n: int, parallel: int, sequential: int) -> dict[str, float]:
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
        created: dict[str, float] = {}

        def submit(name: str) -> dict:
            submission = playground.submit_predictions(np.asarray(y_test), name=name)
            created[name] = time.time()
            return submission

        sequential_names = [f"seq{index:03d}" for index in range(sequential)]
        one_by_one = []
        for name in sequential_names:
            submit(name)
            one_by_one.extend(playground.wait_for(name, timeout=120, leaderboard=False))
        predictions_uri = one_by_one[0]["spec"]["predictions"]["uri"]
        job_alone = float(np.median([score_job_alone(predictions_uri, holdout[1], Path(state)) for _ in range(3)]))
        names = [f"b{index:05d}" for index in range(n)]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(submit, names))
        finished = playground.wait_for(*names, timeout=60 + 3 * n, leaderboard=False)
        elapsed = time.monotonic() - started
        assert cluster.operator_process is not None
        rss = _peak_rss_mb(cluster.operator_process.pid)
        phases = {s["status"]["phase"] for s in finished}
        sequential_latency = _latencies(one_by_one, created)
        latency = _latencies(finished, created)
        return {"n": n, "scored": sum(s["status"]["phase"] == "Evaluated" for s in finished),
                "seq_p50": float(np.percentile(sequential_latency, 50)),
                "seq_p95": float(np.percentile(sequential_latency, 95)), "job_alone": job_alone,
                "phases": ",".join(sorted(phases)), "p50": float(np.percentile(latency, 50)),
                "p95": float(np.percentile(latency, 95)), "throughput": n / elapsed, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submissions", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--parallel", type=int, default=4, help="job runner parallelism")
    parser.add_argument("--sequential", type=int, default=10, help="submissions timed one at a time")
    args = parser.parse_args()
    print("one at a time: submission-to-scored latency vs the score command alone in a fresh process | "
          "burst of N: throughput, latency (queueing included), operator peak RSS")
    print(f"{'N':>6} {'seq p50':>8} {'seq p95':>8} {'job alone':>10} {'ratio':>6} | {'scored':>7} "
          f"{'subs/s':>7} {'p50 s':>7} {'p95 s':>7} {'RSS MB':>7}")
    for n in args.submissions:
        r = run(n, args.parallel, args.sequential)
        print(f"{r['n']:>6} {r['seq_p50']:>8.2f} {r['seq_p95']:>8.2f} {r['job_alone']:>10.2f} "
              f"{r['seq_p50'] / r['job_alone']:>6.2f} | {r['scored']:>7} {r['throughput']:>7.2f} "
              f"{r['p50']:>7.2f} {r['p95']:>7.2f} {r['rss_mb']:>7.0f}  ({r['phases']})", flush=True)
    print("targets: seq p50 < 1 s (everything but model compute: here the whole path, the score step "
          "included), all scored, operator RSS < 300 MB. The runner forks the score step from a warm "
          "interpreter, so the path can beat a fresh process (ratio < 1).")


if __name__ == "__main__":
    main()
