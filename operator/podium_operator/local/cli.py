"""`podium local up|down|status|env`: the CLI verb local mode contributes to `podium` (entry point ``podium.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``local`` verb to the ``podium`` command's subparsers."""
    local = commands.add_parser("local", help="Run a local cluster (no Docker, no Kubernetes needed).")
    local.add_argument("action", choices=["up", "down", "status", "env"])
    local.add_argument("--state-dir", type=Path, default=None, help="Default: ~/.podium/local ($PODIUM_HOME)")
    local.add_argument("--foreground", action="store_true", help="With up: run in this terminal until Ctrl-C.")
    local.add_argument("--users", default="", metavar="alice,bob,carol:owner",
                       help="With up: users to add (participants, or owners with ':owner').")
    local.add_argument("--user", default=None, help="With env: act as this user (default: the admin).")
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
        try:
            wanted = cluster.parse_users(args.users)
        except ValueError as error:
            print(f"--users: {error}", file=sys.stderr)
            return 2
        if args.foreground:
            cluster.serve(state_dir, users=wanted)
            return 0
        state = cluster.up(state_dir, users=args.users)
        print(f"Podium local cluster is up (API {state['api']}, object store {state['objectStore']}).")
        print(f"  {state['sandbox']}")
        print(f"  export KUBECONFIG={state['kubeconfig']}   # the admin (podium-admin); or: eval \"$(podium local env)\"")
        print("  kubectl apply -f examples/playground.yaml && kubectl get playgrounds")
        users = state.get("users") or {}
        for name, user in users.items():
            print(f"  as {name} ({user['role']}): kubectl --context {name} ...  or  eval \"$(podium local env --user {name})\"")
        missing = [name for name, _ in wanted if name not in users]
        if missing:
            print(f"  (already running without {', '.join(missing)}: podium local down, then up --users again)")
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
    if args.action == "env":
        return _print_env(cluster, current, args.user)
    for key, value in current.items():
        if key == "users":
            value = ", ".join(f"{name} ({user['role']})" for name, user in value.items()) or "none"
        if key != "env":
            print(f"{key}: {value}")
    return 0


def _print_env(cluster: Any, state: dict[str, Any], user: str | None) -> int:
    """``export`` lines to act as ``user`` (kubectl, the SDK, the AWS tools): ``eval "$(podium local env)"``."""
    import shlex
    import sys

    try:
        env = cluster.user_environment(state, user)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 1
    for key, value in sorted(env.items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0
