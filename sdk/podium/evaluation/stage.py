"""The trusted stage step: copy the artifact and the holdout *features* (never labels) into the volume
the sandboxed predict step will read.

    python -m podium.evaluation.stage --artifact URI --features URI --dest /data [--preprocessor URI]

(the arguments are :class:`~podium.evaluation.wire.StageArgs`, the layout is :mod:`podium.evaluation.wire`'s).

Produces ``DEST/model/`` (the unpacked artifact), ``DEST/features<suffix>`` and, for a preprocessor
submitted apart from the model, ``DEST/preprocessor/``; everything is made world-readable because the
predict step runs as another, unprivileged user. On failure the message goes to stderr and to the
termination log (:func:`~podium.evaluation.wire.termination_log_path`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from podium import storage
from podium.errors import PodiumError
from podium.evaluation.wire import (
    STAGED_MODEL,
    STAGED_OUT,
    STAGED_PREPROCESSOR,
    StageArgs,
    report_failure,
    staged_features_name,
)
from podium.uri import parse


def run_stage(*, artifact: str, features: str, dest: Path, preprocessor: str | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    _stage_tree(artifact, dest / STAGED_MODEL, field="model.uri")
    if preprocessor is not None:  # the predict step uses it in place of any bundled in the artifact
        _stage_tree(preprocessor, dest / STAGED_PREPROCESSOR, field="model.preprocessorUri")
    storage.download(features, dest / staged_features_name(features))
    (dest / STAGED_OUT).mkdir(exist_ok=True)
    for root, dirs, files in os.walk(dest):
        for name in dirs:
            os.chmod(Path(root) / name, 0o777 if name == STAGED_OUT and Path(root) == dest else 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)
    return dest


def _stage_tree(uri: str, target: Path, *, field: str) -> None:
    """A directory, an archive of one (unpacked) or a single file, as ``target/``; a retry starts clean."""
    from podium.artifacts.archive import is_archive, unpack

    if target.exists():
        shutil.rmtree(target)
    location = parse(uri)
    if location.is_local and location.path is not None and location.path.is_dir():
        shutil.copytree(location.path, target)
        return
    with tempfile.TemporaryDirectory(prefix="podium-stage-") as scratch:
        try:
            fetched = storage.download(uri, Path(scratch) / (location.name or "artifact"))
        except PodiumError as error:
            if error.field in (None, "uri"):  # the Submission field that holds this URI says more
                error.field = field
            raise
        if is_archive(fetched):
            unpack(fetched, target)
        else:
            target.mkdir()
            shutil.copy2(fetched, target / fetched.name)


def main(argv: Sequence[str] | None = None) -> int:
    args = StageArgs.from_argv(argv, prog="python -m podium.evaluation.stage", description=__doc__)
    try:
        run_stage(artifact=args.artifact, features=args.features, dest=args.dest, preprocessor=args.preprocessor)
    except PodiumError as error:
        named = (error.field or "").startswith("model.")  # the Submission field at fault is named already
        message = f"{'' if named else 'model.uri: '}could not stage the submission: {error}"
        report_failure(message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
