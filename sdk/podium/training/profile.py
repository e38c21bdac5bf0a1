"""The profile Job of a Playground (trusted): the meta-features of its training data, for recommendations.

    python -m podium.training.profile --features URL --labels URL --task classification --out URL

Reads the training data through presigned URLs (within the training data limit), computes
:func:`podium.automl.metafeatures.compute` and PUTs ``{"metafeatures": {...}, "rows": n, "columns": m}``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from podium.errors import PodiumError
from podium.evaluation.wire import report_failure
from podium.training.inputs import read_training_data
from podium.training.report import write_json
from podium.training.wire import ProfileArgs


def run_profile(args: ProfileArgs) -> dict[str, float]:
    import numpy as np

    from podium.automl.metafeatures import compute

    with tempfile.TemporaryDirectory(prefix="podium-profile-") as scratch:
        features, labels = read_training_data(args.features, args.labels, args.task, Path(scratch))
    values = compute(np.asarray(features, dtype=float), labels, args.task)
    write_json(args.out, {"metafeatures": values, "rows": int(len(labels)), "columns": int(np.shape(features)[1])})
    return values


def main(argv: Sequence[str] | None = None) -> int:
    args = ProfileArgs.from_argv(argv, prog="python -m podium.training.profile", description=__doc__)
    try:
        values = run_profile(args)
    except (PodiumError, ValueError) as error:
        report_failure(f"trainingData: could not compute meta-features: {error}")
        return 1
    print(f"{len(values)} meta-features", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
