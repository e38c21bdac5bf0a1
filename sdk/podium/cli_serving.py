"""The serving verbs: ``podium deploy``, ``swap``, ``predict`` and ``rollout status`` (over podium.deployments).

Each prints a table by default, ``-o json`` or ``-o yaml`` for scripts. Failures are PodiumErrors, which
``podium.cli.main`` prints as one line.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from podium.errors import InvalidConfig

if TYPE_CHECKING:
    import pandas as pd

OUTPUTS = ("table", "json", "yaml")


def register(commands: Any) -> None:
    deploy = _verb(commands, "deploy", "Serve a submission of a playground (creates or updates its ModelDeployment).")
    _target(deploy)
    deploy.add_argument("--name", help="The ModelDeployment's name (default: the playground's).")
    deploy.add_argument("--steps", type=_steps, help="Canary traffic percents, e.g. 10,50.")
    deploy.add_argument("--interval", type=int, metavar="SECONDS", help="How long each canary step runs.")
    deploy.add_argument("--mode", choices=("Standard", "Knative"), help="KServe deployment mode.")
    deploy.add_argument("--no-wait", dest="wait", action="store_false", help="Return once the change is accepted.")
    deploy.set_defaults(handler=_deploy)

    swap = _verb(commands, "swap", "Swap the served model for another submission (a canary per the rollout policy).")
    _target(swap)
    swap.add_argument("--name", help="The ModelDeployment's name (default: the playground's).")
    swap.add_argument("--no-wait", dest="wait", action="store_false", help="Return once the change is accepted.")
    swap.set_defaults(handler=_swap)

    predict = _verb(commands, "predict", "Send rows (CSV with a header, or JSON rows) to the deployment.")
    predict.add_argument("file", metavar="FILE|-", help="CSV or JSON rows; - reads standard input.")
    predict.add_argument("--protocol", choices=("v1", "v2"), help="Default: the deployment's spec.runtime.protocol.")
    predict.add_argument("--probabilities", action="store_true", help="Also each class's probability.")
    predict.add_argument("--name", help="The ModelDeployment's name (default: the playground's).")
    predict.set_defaults(handler=_predict)

    rollout = commands.add_parser("rollout", help="Follow a deployment's rollout.")
    actions = rollout.add_subparsers(dest="action", required=True)
    status = _verb(actions, "status", "The deployment's phase, traffic and last analysis.")
    status.add_argument("--name", help="The ModelDeployment's name (default: the playground's).")
    status.add_argument("-w", "--watch", action="store_true", help="Print each change until the rollout ends.")
    status.set_defaults(handler=_status)


def _verb(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("playground", metavar="PLAYGROUND")
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--context", help="The kubeconfig context (default: the current one).")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    parser.add_argument("--timeout", type=float, default=600.0, help="Seconds to wait (default 600).")
    return parser


def _target(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=_positive, help="A leaderboard version.")
    which.add_argument("--submission", help="A submission's name.")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a leaderboard version is a whole number from 1")
    return int(text)


def _steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated traffic percents, e.g. 10,50") from None
    if any(not 1 <= step <= 100 for step in steps) or len(set(steps)) != len(steps):
        raise argparse.ArgumentTypeError(f"{text!r}: each step a percent from 1 to 100, none repeated")
    return steps


def _playground(args: argparse.Namespace) -> Any:
    from podium.client import ModelPlayground

    return ModelPlayground(args.playground, namespace=args.namespace, context=args.context,
                           progress=None if args.output == "table" else False)


def _deploy(args: argparse.Namespace) -> int:
    from podium import deployments

    rollout: dict[str, Any] = {}
    if args.steps is not None:
        rollout["steps"] = args.steps
    if args.interval is not None:
        rollout["stepIntervalSeconds"] = args.interval
    shown = deployments.deploy(_playground(args), args.version, submission=args.submission, name=args.name,
                               rollout=rollout or None, runtime={"deploymentMode": args.mode} if args.mode else None,
                               wait=args.wait, timeout=args.timeout)
    return _print_view(shown, args.output)


def _swap(args: argparse.Namespace) -> int:
    from podium import deployments

    shown = deployments.update(_playground(args), args.version, submission=args.submission, name=args.name,
                               wait=args.wait, timeout=args.timeout)
    return _print_view(shown, args.output)


def _status(args: argparse.Namespace) -> int:
    from podium import deployments

    pg = _playground(args)
    if not args.watch:
        return _print_view(deployments.get_deployment(pg, args.name), args.output)

    def changed(shown: deployments.DeploymentView) -> None:
        print(deployments.progress_text(shown), file=sys.stderr, flush=True)

    shown = deployments.wait_rollout(pg, args.name or pg.name, args.timeout, progress=False, on_change=changed)
    return _print_view(shown, args.output)


def _predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from podium import deployments

    rows = read_rows(sys.stdin.read() if args.file == "-" else _read(Path(args.file)), args.file)
    answer = deployments.predict(_playground(args), rows, protocol=args.protocol,
                                 probabilities=args.probabilities, name=args.name, timeout=args.timeout)
    labels, frame = answer if args.probabilities else (answer, None)
    table = pd.DataFrame({"label": labels})
    if frame is not None:
        table = pd.concat([table, frame.reset_index(drop=True)], axis=1)
    if args.output == "table":
        print(table.to_string(index=False))
    else:
        records = json.loads(table.to_json(orient="records"))
        print(json.dumps(records, indent=2) if args.output == "json" else yaml.safe_dump(records, sort_keys=False),
              end="\n" if args.output == "json" else "")
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise InvalidConfig(f"cannot read {path} ({error.strerror or error})", field="FILE",
                            hint="give a CSV or JSON file of rows, or - for standard input") from None


def read_rows(text: str, source: str = "-") -> pd.DataFrame | list[Any]:
    """JSON (a list of rows, lists or objects, or ``{"instances": [...]}``) or CSV with a header row."""
    import pandas as pd  # here: the other verbs start without it
    stripped = text.strip()
    if not stripped:
        raise InvalidConfig(f"{source} holds no rows", field="FILE", hint="give CSV with a header, or JSON rows")
    if stripped[0] in "[{":
        try:
            parsed = json.loads(stripped)
        except ValueError as error:
            raise InvalidConfig(f"{source} is not valid JSON ({error})", field="FILE",
                                hint="a JSON list of rows, e.g. [[5.1, 3.5, 1.4, 0.2]]") from None
        rows = parsed.get("instances") if isinstance(parsed, dict) else parsed
        if not isinstance(rows, list) or not rows:
            raise InvalidConfig(f"{source}: expected a non-empty JSON list of rows", field="FILE",
                                hint='a list, or {"instances": [...]}')
        return pd.DataFrame(rows) if all(isinstance(row, dict) for row in rows) else rows
    try:
        return pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError) as error:
        raise InvalidConfig(f"{source} is not valid CSV ({' '.join(str(error).split())})", field="FILE",
                            hint="CSV with a header row of column names") from None


# --- output -------------------------------------------------------------------------------------------
def view_record(shown: Any) -> dict[str, Any]:
    return dict(shown.as_dict())


def _print_view(shown: Any, output: str) -> int:
    if output == "json":
        print(json.dumps(view_record(shown), indent=2, default=str))
    elif output == "yaml":
        print(yaml.safe_dump(json.loads(json.dumps(view_record(shown), default=str)), sort_keys=False), end="")
    else:
        print(view_table(shown))
    return 0


def view_table(shown: Any) -> str:
    """NAME/PHASE/URL, then the traffic split, then the last analysis and the last few rollout events."""
    lines = [_columns([["NAME", "PLAYGROUND", "TARGET", "PHASE", "URL"],
                       [shown.name, shown.playground, shown.target, shown.phase, shown.url or "-"]])]
    if shown.message:
        lines.append(f"message: {shown.message}")
    if shown.traffic:
        lines += ["", _columns([["ROLE", "SUBMISSION", "VERSION", "PERCENT"]] + [
            [t.get("role", ""), t.get("submission", ""), _text(t.get("version")), f"{t.get('percent', 0)}%"]
            for t in shown.traffic])]
    if shown.analysis:
        analysis = shown.analysis
        values = ", ".join(f"{k}={_text(v)}" for k, v in (analysis.get("values") or {}).items())
        lines += ["", f"analysis: {analysis.get('verdict')} at {analysis.get('percent', 0)}% ({analysis.get('stage')})"
                  + (f": {values}" if values else "")]
        lines += [f"  - {reason}" for reason in analysis.get("reasons") or []]
    if shown.shadow:
        lines += ["", f"shadow: {shown.shadow.get('submission')} {shown.shadow.get('message') or ''}".rstrip()]
    if shown.history:
        lines += ["", _columns([["TIME", "ACTION", "SUBMISSION", "PERCENT", "REASON"]] + [
            [e.get("time", ""), e.get("action", ""), e.get("submission", ""), _text(e.get("percent")),
             e.get("reason", "")] for e in shown.history[-5:]])]
    return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _columns(rows: list[list[Any]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
