"""The `podium` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def _local(args: argparse.Namespace) -> int:
    # Local mode lives in the operator package (installed with the `local` extra).
    try:
        from podium_operator.local import cluster
    except ImportError as error:
        print(f"podium local needs the operator package: pip install 'podium[local]' ({error})", file=sys.stderr)
        return 2
    state_dir: Path = args.state_dir or cluster.DEFAULT_HOME
    if args.action == "up":
        if args.foreground:
            cluster.serve(state_dir)
            return 0
        state = cluster.up(state_dir)
        print(f"Podium local cluster is up (API {state['api']}, object store {state['objectStore']}).")
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


def _validate(args: argparse.Namespace) -> int:
    from podium.api.validation import ManifestError, validate_manifest

    failed = 0
    for path in args.files:
        for document in yaml.safe_load_all(path.read_text()):
            if not document:
                continue
            try:
                resource = validate_manifest(document)
                print(f"{path}: {resource.kind} {document['metadata'].get('name', '')} is valid")
            except ManifestError as error:
                failed += 1
                print(f"{path}: {error}", file=sys.stderr)
    return 1 if failed else 0


def _crds(args: argparse.Namespace) -> int:
    from podium.api.crdgen import write_crds

    for directory in args.directories:
        for path in write_crds(directory):
            print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description="Podium: playgrounds, leaderboards, deployments.")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="Run a local cluster (no Docker, no Kubernetes needed).")
    local.add_argument("action", choices=["up", "down", "status"])
    local.add_argument("--state-dir", type=Path, default=None, help="Default: ~/.podium/local ($PODIUM_HOME)")
    local.add_argument("--foreground", action="store_true", help="With up: run in this terminal until Ctrl-C.")
    local.set_defaults(handler=_local)

    validate = commands.add_parser("validate", help="Check manifests against the CRD schemas and CEL rules.")
    validate.add_argument("files", nargs="+", type=Path)
    validate.set_defaults(handler=_validate)

    crds = commands.add_parser("crds", help="Write the CRDs generated from the API models.")
    crds.add_argument("directories", nargs="+", type=Path)
    crds.set_defaults(handler=_crds)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.handler(args))


if __name__ == "__main__":
    main()
