"""The trusted stage step: copy the artifact and the holdout *features* (never labels) into the volume
the sandboxed predict step will read.

    python -m podium.evaluation.stage --artifact URI --features URI --dest /data

Produces ``DEST/model/`` (the unpacked artifact) and ``DEST/features<suffix>``; everything is made
world-readable because the predict step runs as another, unprivileged user.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from podium import storage
from podium.errors import PodiumError


def staged_features_name(features_uri: str) -> str:
    return f"features{PurePosixPath(storage.parse(features_uri).name).suffix}"


def run_stage(*, artifact: str, features: str, dest: Path) -> Path:
    from podium.artifacts.archive import is_archive, unpack

    dest.mkdir(parents=True, exist_ok=True)
    model_dir = dest / "model"
    if model_dir.exists():  # a retried stage starts clean
        shutil.rmtree(model_dir)
    location = storage.parse(artifact)
    if location.is_local and location.path is not None and location.path.is_dir():
        shutil.copytree(location.path, model_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="podium-stage-") as scratch:
            fetched = storage.download(artifact, Path(scratch) / (location.name or "artifact"))
            if is_archive(fetched):
                unpack(fetched, model_dir)
            else:
                model_dir.mkdir()
                shutil.copy2(fetched, model_dir / fetched.name)
    storage.download(features, dest / staged_features_name(features))
    (dest / "out").mkdir(exist_ok=True)
    for root, dirs, files in os.walk(dest):
        for name in dirs:
            os.chmod(Path(root) / name, 0o777 if name == "out" and Path(root) == dest else 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podium.evaluation.stage", description=__doc__)
    parser.add_argument("--artifact", required=True, help="submission artifact: .tar.gz or directory URI")
    parser.add_argument("--features", required=True, help="holdout features URI")
    parser.add_argument("--dest", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        run_stage(artifact=args.artifact, features=args.features, dest=args.dest)
    except PodiumError as error:
        message = f"model.uri: could not stage the submission: {error}"
        print(message, file=sys.stderr)
        termination = Path(os.environ.get("PODIUM_TERMINATION_LOG", "/dev/termination-log"))
        if os.access(termination.parent, os.W_OK):
            termination.write_text(message[:4000])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
