"""The score step as it runs in an evaluation Job: fetch inputs, score, store results where they belong.

Public metrics (plus the model metadata from the predict step) go to ``--results``, which the operator
reads and publishes; private metrics go to ``--private``, a prefix only the operator can read, and are
published only when the competition closes. The termination message carries public metrics only.

    python -m podium.evaluation.scorejob --predictions URI --labels URI --task classification \\
        --class-labels-json '["a","b"]' --results s3://.../result.json --private s3://.../scores.json \\
        [--split URI] [--metadata PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium import storage
from podium.errors import PodiumError
from podium.evaluation.score import run_score

DEFAULT_TERMINATION_LOG = "/dev/termination-log"


def _fetch(uri: str, scratch: Path, name: str) -> Path:
    location = storage.parse(uri)
    if location.is_local and location.path is not None:
        return location.path
    return storage.download(uri, scratch / f"{name}{Path(location.name).suffix}")


def run_score_job(
    *,
    predictions: str,
    labels: str,
    task: str,
    class_labels: Sequence[Any] | None,
    results: str,
    private: str,
    split: str | None = None,
    metadata: Path | None = None,
    termination_log: Path | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="podium-score-") as scratch_dir:
        scratch = Path(scratch_dir)
        result = run_score(
            _fetch(predictions, scratch, "predictions"),
            _fetch(labels, scratch, "labels"),
            task=task,  # type: ignore[arg-type]
            class_labels=class_labels,
            split=_fetch(split, scratch, "split") if split else None,
            out_dir=scratch / "out",
            termination_log=termination_log,
        )
    model_metadata = json.loads(metadata.read_text()) if metadata is not None and metadata.exists() else {}
    public = {"public": result.public, "rows": result.rows.model_dump(), "metadata": model_metadata}
    storage.write_bytes(results, json.dumps(public).encode())
    storage.write_bytes(private, json.dumps({"private": result.private, "all": result.all}).encode())
    return public


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podium.evaluation.scorejob", description=__doc__)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--task", required=True, choices=["classification", "regression"])
    parser.add_argument("--class-labels-json", default="[]")
    parser.add_argument("--results", required=True, help="URI for public metrics and metadata")
    parser.add_argument("--private", required=True, help="URI for private metrics (operator-only prefix)")
    parser.add_argument("--split")
    parser.add_argument("--metadata", type=Path, help="metadata.json written by the predict step")
    parser.add_argument("--termination-log", type=Path,
                        default=Path(os.environ.get("PODIUM_TERMINATION_LOG", DEFAULT_TERMINATION_LOG)))
    args = parser.parse_args(argv)
    class_labels = json.loads(args.class_labels_json) or None
    log = args.termination_log if os.access(args.termination_log.parent, os.W_OK) else None
    try:
        run_score_job(
            predictions=args.predictions, labels=args.labels, task=args.task, class_labels=class_labels,
            results=args.results, private=args.private, split=args.split, metadata=args.metadata,
            termination_log=log,
        )
    except PodiumError as error:
        print(str(error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
