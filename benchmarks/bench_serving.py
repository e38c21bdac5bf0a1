"""Serving benchmarks over loopback: the predictor vs a minimal KServe server, the router's overhead, and
the requests that fail during a canary swap under load.

    python benchmarks/bench_serving.py [--sections predictor,router,swap] [--modes Standard,Knative] [--quick]

- **predictor**: one scikit-learn model (LogisticRegression on iris) served twice, each server in its own
  process with one worker: (a) the baseline, a minimal ``kserve.Model`` doing what KServe's stock sklearn
  server does (V1 ``instances`` -> ``np.array`` -> ``model.predict``, KServe's default flags), and (b)
  ``python -m podium.serving`` on the same model saved with ``save_submission`` (``--runtime auto``: the
  artifact's checked ONNX export answers; labels plus probabilities). Sequential (1 client) then
  ``--clients`` concurrent ones, a fixed number of requests each; req/s, p50, p99 and the ratios podium/baseline.
- **router** (a LocalCluster: the real operator and serving controller): one ModelDeployment (Standard mode);
  its predictor measured directly (its own port) and through its router (``status.url``), sequential V1
  requests in alternating blocks; p50/p99 of each and the difference (target: < 1 ms p50).
- **swap** (the same cluster): ``lr`` -> ``tree`` through a 10-step canary (steps 10..90, 95, then promotion)
  with ``--swap-clients`` keep-alive clients through the router from before the swap until it is promoted
  and at least ``--swap-requests`` were sent (bounded by ``--swap-seconds``); requests, failures (non-200 or
  no answer), requests per submission (``x-podium-submission``), the swap's duration (target: 0 failed of
  >= 10,000). ``--modes Standard,Knative`` runs it once per deployment mode.

The client is keep-alive HTTP/1.1 on asyncio, bounded by count (and time, for the swap); for the router and the
swap it runs in a process of its own, so it never shares the cluster's interpreter. :func:`load` and
:class:`Stats` are the reusable hook: ``load(url, body, clients=8, requests=N, during=callback)``.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import serving_load  # beside this script (the load client)
from serving_load import Stats, load

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.integration.holdouts (the iris playground)
SECTIONS = ("predictor", "router", "swap")
SWAP_STEPS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
ROLLOUT = {"stepIntervalSeconds": 2, "analysis": {"maxErrorRate": 0.01, "maxLatencyRatio": 3.0, "minRequests": 10}}
MDEP = ("podium.dev", "v1alpha1", "default", "modeldeployments")
CHANGES = ("CanaryStarted", "StepAdvanced", "Promoted", "RolledBack")  # the rollout events that move traffic
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


# --- Through local mode's serving: router overhead, a canary swap under load ---------------------------------
# The load runs in a process of its own (load_worker): the router shares the LocalCluster's process (and GIL)
# with the API emulator and the object store, as in `podium local up`, never with the client.


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _deployment(name: str, mode: str, submission: str, steps: list[int]) -> dict[str, Any]:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
            "spec": {"playground": "iris", "submission": submission,
                     "runtime": {"deploymentMode": mode, "resources": {"cpu": "1", "memory": "1Gi"}},
                     "rollout": {"steps": steps, **ROLLOUT}}}


def _wait(api: Any, name: str, done: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
    """Poll the ModelDeployment until its status is of the current spec and ``done``; bounded by ``timeout``."""
    deadline, found = time.monotonic() + timeout, dict[str, Any]()
    while time.monotonic() < deadline:
        obj = api.get_namespaced_custom_object(*MDEP, name)
        found = obj.get("status") or {}
        if found.get("observedGeneration") == obj["metadata"]["generation"] and done(found):
            return dict(found)
        time.sleep(0.1)
    raise RuntimeError(f"ModelDeployment {name}: not {what} after {timeout:.0f}s; status: {found}")


def router_overhead(cluster: Any, name: str, url: str, body: bytes, requests: int) -> None:
    served = cluster.serving.served()[("default", name)]  # (a peek from another thread: read-only, at rest)
    direct = next(p.state.url for p in served.predictors.values() if p.state.phase == "Ready")
    urls = [f"{direct}/v1/models/{name}:predict", url]
    rounds = 6 if requests >= 600 else 2
    spec = {"mode": "sequential", "urls": urls, "body": body.decode(), "requests": requests, "rounds": rounds}
    out, _ = serving_load.spawn(spec).communicate(timeout=600)
    result = json.loads(out.splitlines()[-1])
    paths = {"direct": result[urls[0]], "router": result[urls[1]]}
    own = np.asarray(list(served.router.overheads)[-len(paths["router"]["latencies"]):])
    p = {k: (np.percentile(v["latencies"], 50), np.percentile(v["latencies"], 99)) for k, v in paths.items()}
    added = (p["router"][0] - p["direct"][0], p["router"][1] - p["direct"][1])
    print(f"== Router overhead: LocalCluster (the real serving controller's router, Standard mode, one predictor), "
          f"sequential V1 :predict, {requests} requests per path in {rounds} alternating blocks, 1 client")
    print(f"{'path':<16} {'p50 ms':>7} {'p99 ms':>7} {'fail':>4}")
    for key in ("direct", "router"):
        print(f"{key:<16} {_ms(p[key][0]):>7} {_ms(p[key][1]):>7} {paths[key]['failures']:>4}")
    verdict = "met" if added[0] < 0.001 else "MISSED"
    print(f"{'router - direct':<16} {_ms(added[0]):>7} {_ms(added[1]):>7}      target < 1 ms p50: {verdict}; "
          f"ratio router/direct p50 {p['router'][0] / p['direct'][0]:.2f}, p99 {p['router'][1] / p['direct'][1]:.2f}")
    if len(own):
        print(f"{'router, own':<16} {_ms(np.percentile(own, 50)):>7} {_ms(np.percentile(own, 99)):>7}      "
              "(the router's podium_router_overhead_seconds: its time less its upstream request, which includes "
              "its own HTTP client's work, so this is a lower bound)")


def canary_swap(api: Any, name: str, mode: str, url: str, body: bytes, args: argparse.Namespace) -> list[str]:
    """Swap ``lr`` for ``tree`` under load; the row of the swap table."""
    spec = {"mode": "swap", "url": url, "body": body.decode(), "clients": args.swap_clients,
            "at_least": args.swap_requests, "max_seconds": args.swap_seconds}
    worker = serving_load.spawn(spec)
    assert worker.stdin is not None and worker.stdout is not None
    try:
        worker.stdout.readline()  # "started" (or nothing, if it died: then its result says so)
        started, patched = time.monotonic(), time.time()
        api.patch_namespaced_custom_object(*MDEP, name, {"spec": {"submission": "tree"}})
        final = _wait(api, name, lambda s: s.get("phase") == "Failed" or (
            s.get("phase") == "Ready" and (s.get("stable") or {}).get("submission") == "tree"),
            args.swap_seconds, "promoted or failed")
        swap_seconds = time.monotonic() - started
    except BaseException:
        worker.kill()
        raise
    finally:
        worker.stdin.close()
    result = json.loads(worker.stdout.read().splitlines()[-1])
    worker.wait(timeout=60)
    codes = {int(k): v for k, v in result["codes"].items()}
    total, failed = sum(codes.values()), sum(v for k, v in codes.items() if k != 200)
    actions = [h["action"] for h in final.get("history", []) if h["submission"] == "tree"]
    outcome = actions[-1] if actions else final.get("phase", "?")
    last = (final.get("history") or [{}])[-1]
    moves = [h for h in final.get("history", []) if h["submission"] == "tree" and h["action"] in CHANGES]
    print(f"{mode}: seconds from the patch: " + ", ".join(  # where the swap's time goes (events: whole seconds)
        f"{h['action']} {h.get('percent') if h.get('percent') is not None else ''} "
        f"{datetime.fromisoformat(h['time'].replace('Z', '+00:00')).timestamp() - patched:.0f}" for h in moves))
    if outcome != "Promoted":  # why (the analysis' reason and the values it read)
        print(f"{mode}: {outcome} at {last.get('percent')}%: {last.get('reason')} {json.dumps(last.get('values'))}")
    by = " ".join(f"{k or '?'}:{v:,}" for k, v in sorted(result["submissions"].items()))
    why = " ".join(f"{k or 'no answer'}:{v}" for k, v in sorted(codes.items()) if k != 200)
    met = "met" if failed == 0 and total >= 10_000 else "MISSED"
    return [mode, f"{len(moves)}", f"{swap_seconds:.1f}",
            f"{total:,}", f"{failed}{f' ({why})' if why else ''}", by, f"{result['seconds']:.1f}",
            f"{total / result['seconds']:,.0f}", _ms(result["p50"]), _ms(result["p99"]), outcome,
            f"{failed} of {total:,}: {met}"]


def serving_sections(args: argparse.Namespace, sections: list[str]) -> None:
    import kubernetes.client
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from podium_operator.local.cluster import LocalCluster
    from tests.integration.holdouts import iris_split, open_iris_playground

    steps = [int(s) for s in args.steps.split(",")]
    rows = [[5.9, 3.0, 4.2, 1.5], [6.3, 2.9, 5.6, 1.8], [5.0, 3.4, 1.5, 0.2]]
    body = json.dumps({"instances": (rows * args.rows)[: args.rows]}).encode()
    table_rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="podium-bench-serving-") as state, \
            LocalCluster(Path(state) / "cluster") as cluster:
        for key, value in cluster.environment().items():
            if key == "KUBECONFIG" or key.startswith(("AWS_", "PODIUM_")):
                os.environ[key] = value
        config = kubernetes.client.Configuration()
        config.host = cluster.api.url
        api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))
        playground = open_iris_playground(api, "iris")[0]
        X_train, _, y_train, _ = iris_split()
        for submission, model in (("lr", LogisticRegression(max_iter=500)),
                                  ("tree", DecisionTreeClassifier(random_state=0))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                playground.submit_model(model.fit(X_train, y_train), name=submission, example_data=X_train)
        evaluated = {s["metadata"]["name"]: s["status"]["phase"]
                     for s in playground.wait_for("lr", "tree", timeout=300, progress=False)}
        if set(evaluated.values()) != {"Evaluated"}:
            raise RuntimeError(f"the submissions were not all evaluated: {evaluated}")
        for n, mode in enumerate(m.strip() for m in args.modes.split(",")):
            name = "iris" if n == 0 else f"iris-{mode.lower()}"
            api.create_namespaced_custom_object(*MDEP, _deployment(name, mode, "lr", steps))
            ready = _wait(api, name, lambda s: s.get("phase") == "Ready", 180, "Ready")
            url = f"{ready['url']}/v1/models/{name}:predict"
            if n == 0 and "router" in sections:
                router_overhead(cluster, name, url, body, args.overhead_requests)
            if "swap" in sections:
                table_rows.append(canary_swap(api, name, mode, url, body, args))
        prometheus = "a real Prometheus" if cluster.prometheus is not None else "no Prometheus (direct scrapes)"
    if table_rows:
        print(f"== Canary swap under load: LocalCluster (real operator, serving controller, {prometheus}), "
              f"lr -> tree, steps {steps} ({len(steps)} canary step(s), then promotion: {len(steps) + 1} traffic "
              f"changes), stepIntervalSeconds {ROLLOUT['stepIntervalSeconds']}, "
              f"analysis {json.dumps(ROLLOUT['analysis'])}, {args.swap_clients} keep-alive clients through the "
              f"router, V1 :predict, from before the swap until promoted and >= {args.swap_requests:,} requests "
              f"(bound {args.swap_seconds:.0f}s)")
        header = ["mode", "changes", "swap s", "requests", "failed", "answered by", "load s", "req/s",
                  "p50 ms", "p99 ms", "outcome", "target 0 of >= 10,000"]
        widths = [max(len(r[i]) for r in [header, *table_rows]) for i in range(len(header))]
        for line in [header, *table_rows]:
            print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))


def predictor_section(args: argparse.Namespace) -> None:
    """Podium's predictor next to the minimal kserve.Model baseline, each on its own port."""
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
    print(f"== Predictor vs baseline: V1 :predict, {args.rows} instance(s) per request, {args.requests} requests "
          f"per scenario, 1 worker per server, {os.cpu_count()} CPUs shared by servers and client")
    print(table(results, (1, args.clients)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="tiny settings everywhere (the smoke test)")
    parser.add_argument("--requests", type=int, default=3000, help="predictor: per scenario and server")
    parser.add_argument("--clients", type=int, default=8, help="predictor: concurrent clients")
    parser.add_argument("--rows", type=int, default=1, help="instances per request (every section)")
    parser.add_argument("--runtime", default="auto", choices=["auto", "native", "onnx"], help="Podium's --runtime")
    parser.add_argument("--overhead-requests", type=int, default=3000, help="router: sequential requests per path")
    parser.add_argument("--modes", default="Standard", help="swap: Standard,Knative")
    parser.add_argument("--steps", default=",".join(map(str, SWAP_STEPS)), help="swap: canary traffic percents")
    parser.add_argument("--swap-clients", type=int, default=8)
    parser.add_argument("--swap-requests", type=int, default=10_000, help="swap: the load runs to at least this")
    parser.add_argument("--swap-seconds", type=float, default=150.0, help="swap: bound on each swap's load")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.overhead_requests, args.steps = 200, 200, "50"
        args.swap_clients, args.swap_requests, args.swap_seconds = 2, 300, 90.0
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    if "predictor" in sections:
        predictor_section(args)
    if {"router", "swap"} & set(sections):
        serving_sections(args, sections)
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
