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
        from podium_operator.local import daemon
    except ImportError as error:  # the `local` extra (kmock, moto, ...) is not installed
        print(f"podium local needs the local-mode extras: pip install 'podium[local]' ({error})", file=sys.stderr)
        return 2
    state_dir: Path = args.state_dir or daemon.DEFAULT_HOME
    if args.action == "up":
        try:
            wanted = daemon.parse_users(args.users)
        except ValueError as error:
            print(f"--users: {error}", file=sys.stderr)
            return 2
        if args.foreground:
            daemon.serve(state_dir, users=wanted)
            return 0
        print("Starting the local cluster (API server, object store, job runner, operator) ...", flush=True)
        state = daemon.up(state_dir, users=args.users)
        print(f"Podium local cluster is up (API {state['api']}, object store {state['objectStore']}).")
        print(f"  {state['sandbox']}")
        if state.get("examples"):
            print(f"  stored the data examples/ names ({len(state['examples'])} objects in s3://{state['bucket']}/)")
        elif "examples" in state:
            print(f"  could not store the data examples/ names (see {state_dir / 'cluster.log'})", file=sys.stderr)
        users = state.get("users") or {}
        missing = [name for name, _ in wanted if name not in users]
        if missing:
            print(f"  (already running without {', '.join(missing)}: podium local down, then up --users again)")
        print("Next:")
        for command, comment in next_steps(state):
            print(f"  {command:<72} # {comment}" if comment else f"  {command}")
        return 0
    if args.action == "down":
        if daemon.read_state(state_dir) is None:
            print("No local cluster was running.")
            return 0
        print("Stopping the local cluster ...", flush=True)
        stopped = daemon.down(state_dir, progress=_show_progress)
        print("Podium local cluster stopped." if stopped else "No local cluster was running.")
        return 0
    current = daemon.read_state(state_dir)
    if current is None:
        print("No local cluster is running; start one with: podium local up")
        return 1
    if args.action == "env":
        return _print_env(daemon, current, args.user)
    for key, value in current.items():
        if key == "users":
            value = ", ".join(f"{name} ({user['role']})" for name, user in value.items()) or "none"
        if key == "examples":
            value = f"{len(value)} objects stored for examples/" if value else "not stored (see cluster.log)"
        if key != "env":
            print(f"{key}: {value}")
    return 0


def next_steps(state: dict[str, Any]) -> list[tuple[str, str]]:
    """What a new user runs next, as (command, comment) pairs: a shell that finds ``podium``, kubectl as the admin
    (and each user), the examples, the SDK, and ``down``."""
    import os
    import shutil
    import sys
    from pathlib import Path

    from podium_operator.local.examples import EXAMPLES_DIR

    steps: list[tuple[str, str]] = []
    activate = Path(sys.prefix) / "bin" / "activate"
    on_path = shutil.which("podium")
    if activate.is_file() and (on_path is None or Path(on_path).parent != activate.parent):
        steps.append((f"source {activate}", "puts podium (and this Python, with the SDK) on PATH"))
    steps.append((f"export KUBECONFIG={state['kubeconfig']}", "the admin (podium-admin); or: eval \"$(podium local env)\""))
    examples = Path("examples") if (Path.cwd() / "examples").resolve() == EXAMPLES_DIR else EXAMPLES_DIR
    steps += [
        (f"kubectl apply -f {examples / 'playground.yaml'}", "its holdout is stored already"),
        ("kubectl wait --for=condition=Ready pg/iris && kubectl get pg", ""),
        (f"kubectl apply -f {examples / 'submission-model.yaml'} -f {examples / 'submission-predictions.yaml'}", ""),
        ("kubectl get sub -w", "until both are Evaluated (Ctrl-C)"),
        ("python -c 'from podium.client import ModelPlayground; print(ModelPlayground(\"iris\").get_leaderboard())'",
         "the SDK: finds the cluster and its object store from KUBECONFIG"),
        ("kubectl explain pg.spec", "every field, described"),
    ]
    for name, user in (state.get("users") or {}).items():
        steps.append((f"kubectl --context {name} get pg", f"as {name} ({user['role']}); or: "
                                                           f"eval \"$(podium local env --user {name})\""))
    steps.append(("podium local down", "when you are done"))
    if os.environ.get("KUBECONFIG") == state["kubeconfig"]:
        steps = [step for step in steps if not step[0].startswith("export KUBECONFIG")]
    return steps


def _show_progress(component: str, took: float | None) -> None:
    """One status line per component while ``down`` stops it."""
    if took is None:
        print(f"  {component} ...", end="", flush=True)
    else:
        print(f" stopped ({took:.1f} s)", flush=True)


def _print_env(daemon: Any, state: dict[str, Any], user: str | None) -> int:
    """``export`` lines to act as ``user`` (kubectl, the SDK, the AWS tools): ``eval "$(podium local env)"``."""
    import shlex
    import sys

    try:
        env = daemon.user_environment(state, user)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return 1
    for key, value in sorted(env.items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0
