"""The Podium demo: a local cluster, the real operator, and kubectl — no Kubernetes, Docker or network.

Run with `make demo`. Steps print as they go; everything is shut down at the end.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from podium_operator.local.cluster import LocalCluster

EXAMPLES = Path(__file__).resolve().parent


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def kubectl(cluster: LocalCluster, *args: str) -> str:
    result = subprocess.run(
        ["kubectl", *args], env=cluster.environment(), capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="podium-demo-") as state:
        step("Starting the local cluster (API emulator, object store, job runner, operator)")
        started = time.monotonic()
        with LocalCluster(Path(state)) as cluster:
            print(f"    API server {cluster.api.url if cluster.api else '?'}, kubeconfig {cluster.kubeconfig}")
            step("kubectl apply -f examples/playground.yaml")
            print(kubectl(cluster, "apply", "-f", str(EXAMPLES / "playground.yaml")), end="")
            step("Waiting for the operator to mark the Playground Ready")
            print(kubectl(cluster, "wait", "--for=condition=Ready", "playground/iris", "--timeout=60s"), end="")
            step("kubectl get playgrounds")
            print(kubectl(cluster, "get", "pg", "-o", "wide"), end="")
            step("Shutting down")
        print(f"    done in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    sys.exit(main())
