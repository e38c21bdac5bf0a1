"""The `podium` command line.

Other installed packages add verbs through the ``podium.cli`` entry-point group: each entry is a
``register(subparsers)`` function. That is how the operator package contributes ``podium local``
without the SDK ever importing it.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from pathlib import Path

import yaml

PLUGIN_GROUP = "podium.cli"


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


def _local_missing(args: argparse.Namespace) -> int:
    print("podium local needs the operator package: pip install 'podium[local]'", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podium", description="Podium: playgrounds, leaderboards, deployments.")
    commands = parser.add_subparsers(dest="command", required=True)

    for plugin in sorted(entry_points(group=PLUGIN_GROUP), key=lambda entry: entry.name):
        plugin.load()(commands)
    if "local" not in commands.choices:
        local = commands.add_parser("local", help="Run a local cluster (needs: pip install 'podium[local]').")
        local.add_argument("rest", nargs=argparse.REMAINDER)
        local.set_defaults(handler=_local_missing)

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
