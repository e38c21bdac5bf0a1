"""The `podium` command line.

Other installed packages add verbs through the ``podium.cli`` entry-point group: each entry is a
``register(subparsers)`` function. That is how the operator package contributes ``podium local``
without the SDK ever importing it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path

import yaml

PLUGIN_GROUP = "podium.cli"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _validate(args: argparse.Namespace) -> int:
    """Each file (a directory: its YAML files, as ``kubectl apply -f``) and each document in it; 1 if any fails."""
    failed = 0
    for path in args.files:
        files = _manifest_files(path, recursive=args.recursive)
        if isinstance(files, str):
            failed += 1
            print(f"{path}: {files}", file=sys.stderr)
            continue
        for file in files:
            failed += _validate_file(file)
    return 1 if failed else 0


def _manifest_files(path: Path, *, recursive: bool) -> list[Path] | str:
    """The files to read, or why there are none."""
    if path.is_dir():
        found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                       if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)
        return found or f"no YAML files in it{'' if recursive else ' (--recursive to look below it)'}"
    return [path] if path.exists() else "no such file or directory"


def _validate_file(path: Path) -> int:
    """Report on every manifest in ``path``; the number that failed."""
    from podium.api.validation import ManifestError, display_name, is_podium, listed, validate_manifest

    try:
        documents = [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
    except yaml.YAMLError as error:
        print(f"{path}: not valid YAML: {_yaml_problem(error)}", file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as error:
        print(f"{path}: cannot read it ({getattr(error, 'strerror', None) or error})", file=sys.stderr)
        return 1
    failed = 0
    for document in documents:
        try:
            for manifest in listed(document):
                if not is_podium(manifest):
                    print(f"{path}: skipped {manifest.get('apiVersion')} {display_name(manifest)} (not a Podium kind)")
                    continue
                validate_manifest(manifest)
                print(f"{path}: {display_name(manifest)} is valid")
        except ManifestError as error:
            failed += 1
            print(f"{path}: {error}", file=sys.stderr)
    return failed


def _yaml_problem(error: yaml.YAMLError) -> str:
    """``expected ',' or '}' at line 3, column 1`` (one line, as PyYAML's own message is several)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


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
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE_OR_DIRECTORY")
    validate.add_argument("-R", "--recursive", action="store_true", help="Also the YAML files below a directory.")
    validate.set_defaults(handler=_validate)

    crds = commands.add_parser("crds", help="Write the CRDs generated from the API models.")
    crds.add_argument("directories", nargs="+", type=Path)
    crds.set_defaults(handler=_crds)

    from podium.cli_serving import register as register_serving  # deploy, swap, predict, rollout

    register_serving(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run a verb; a failure is one line on stderr and exit status 1 (``PODIUM_DEBUG=1``: with the traceback)."""
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
    except KeyboardInterrupt:
        print("podium: interrupted", file=sys.stderr)
        code = 130
    except Exception as error:  # every failure becomes one line; PODIUM_DEBUG=1 shows the rest
        print(f"podium: {_one_line(error)}", file=sys.stderr)
        if os.environ.get("PODIUM_DEBUG"):
            traceback.print_exc()
        code = 1
    sys.exit(code)


def _one_line(error: Exception) -> str:
    from podium.errors import PodiumError

    if not isinstance(error, PodiumError):
        from kubernetes.client import ApiException

        if isinstance(error, ApiException):
            from podium.kube import cluster_error

            error = cluster_error(error, "default")
    if isinstance(error, PodiumError | OSError | TimeoutError):
        text = str(error)
    else:  # not one of ours: say what it was, and how to see more
        text = f"{type(error).__name__}: {error} (PODIUM_DEBUG=1 shows the traceback)"
    return " ".join(text.split())


if __name__ == "__main__":
    main()
