"""`podium local up|down|status`: the CLI verb local mode contributes to `podium` (entry point ``podium.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``local`` verb to the ``podium`` command's subparsers."""
    local = commands.add_parser("local", help="Run a local cluster (no Docker, no Kubernetes needed).")
    local.add_argument("action", choices=["up", "down", "status"])
    local.add_argument("--state-dir", type=Path, default=None, help="Default: ~/.podium/local ($PODIUM_HOME)")
    local.add_argument("--foreground", action="store_true", help="With up: run in this terminal until Ctrl-C.")
    local.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        from podium_operator.local import cluster
    except ImportError as error:  # the `local` extra (kmock, moto, ...) is not installed
        print(f"podium local needs the local-mode extras: pip install 'podium[local]' ({error})", file=sys.stderr)
        return 2
    state_dir: Path = args.state_dir or cluster.DEFAULT_HOME
    if args.action == "up":
        if args.foreground:
            cluster.serve(state_dir)
            return 0
        state = cluster.up(state_dir)
        print(f"Podium local cluster is up (API {state['api']}, object store {state['objectStore']}).")
        print(f"  {state['sandbox']}")
        print(f"  export KUBECONFIG={state['kubeconfig']}")
        print("  kubectl apply -f examples/playground.yaml && kubectl get playgrounds")
        print("  podium local down   # when you are done")
        return 0
    if args.action == "down":
        stopped = cluster.down(state_dir)
        print("Podium local cluster stopped." if stopped else "No local cluster was running.")
        return 0
    current = cluster.read_state(state_dir)
    if current is None:
        print("No local cluster is running; start one with: podium local up")
        return 1
    for key, value in current.items():
        print(f"{key}: {value}")
    return 0
