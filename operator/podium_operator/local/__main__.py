"""`python -m podium_operator.local serve --state-dir DIR [--users alice,bob:owner]`: the process behind `podium local up`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from podium_operator.local.daemon import DEFAULT_HOME, parse_users, serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="podium-local")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="Run the local cluster in the foreground.")
    serve_parser.add_argument("--state-dir", type=Path, default=DEFAULT_HOME)
    serve_parser.add_argument("--api-port", type=int, default=0)
    serve_parser.add_argument("--users", type=parse_users, default=[], help="alice,bob,carol:owner")
    serve_parser.add_argument("--no-examples", action="store_true", help="Do not store the examples' data.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.state_dir, api_port=args.api_port, users=args.users, examples=not args.no_examples)
    # Everything is stopped and written: skip the interpreter's teardown of ~1,000 modules (a second or more).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
