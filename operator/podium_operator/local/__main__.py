"""`python -m podium_operator.local serve --state-dir DIR [--users alice,bob:owner]`: the process behind `podium local up`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from podium_operator.local.cluster import DEFAULT_HOME, parse_users, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="podium-local")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="Run the local cluster in the foreground.")
    serve_parser.add_argument("--state-dir", type=Path, default=DEFAULT_HOME)
    serve_parser.add_argument("--api-port", type=int, default=0)
    serve_parser.add_argument("--users", type=parse_users, default=[], help="alice,bob,carol:owner")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.state_dir, api_port=args.api_port, users=args.users)


if __name__ == "__main__":
    main()
