"""The objects the manifests in ``examples/`` name, so that each works as written in local mode.

``podium local up`` stores them before it reports the cluster ready (``python -m
podium_operator.local.examples``, in a process of its own: the server need not import scikit-learn): the iris holdout of
``playground.yaml`` and the diabetes one of ``playground-regression.yaml`` (from scikit-learn's bundled
data, no downloads) with the iris training data its ``trainingData`` names, and, below the admin's own upload prefix (kubectl acts as ``podium-admin``), the
model archive of ``submission-model.yaml`` (a logistic regression packed with :mod:`podium.artifacts`)
and the predictions of ``submission-predictions.yaml`` (:mod:`podium.predictions`). They are built once
and kept below the state directory (``examples-cache/<fingerprint>/``), the fingerprint covering this
module, the SDK code that writes them and scikit-learn's version: a later ``up`` only uploads them.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import podium

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"  # the checkout's (local mode runs from one)
BUCKET = "podium"
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
IRIS_FEATURES = "playgrounds/default/iris/holdout/features.csv"
IRIS_LABELS = "playgrounds/default/iris/holdout/labels.csv"
IRIS_TRAIN_FEATURES = "playgrounds/default/iris/train/features.csv"
IRIS_TRAIN_LABELS = "playgrounds/default/iris/train/labels.csv"
DIABETES_FEATURES = "playgrounds/default/diabetes/holdout/features.csv"
DIABETES_LABELS = "playgrounds/default/diabetes/holdout/labels.csv"
ADMIN_UPLOADS = "uploads/default/iris/podium-admin"
MODEL = f"{ADMIN_UPLOADS}/iris-logreg.tar.gz"
PREDICTIONS = f"{ADMIN_UPLOADS}/iris-predictions.npz"
KEYS = (IRIS_FEATURES, IRIS_LABELS, IRIS_TRAIN_FEATURES, IRIS_TRAIN_LABELS, DIABETES_FEATURES, DIABETES_LABELS, MODEL, PREDICTIONS)

Upload = Callable[[str, Path], None]  # (key in the bucket, local file)


def build(directory: Path) -> dict[str, Path]:
    """Write every example object below ``directory``; returns key → file."""
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.model_selection import train_test_split

    from podium.data import write_table

    files: dict[str, Path] = {}

    def table(key: str, data: Any) -> None:
        path = directory / key
        path.parent.mkdir(parents=True, exist_ok=True)
        files[key] = write_table(data, path)

    iris = load_iris(as_frame=True)
    labels = np.array(IRIS_CLASSES, dtype=object)[iris.target.to_numpy()]
    x_train, x_holdout, y_train, y_holdout = train_test_split(iris.data, labels, test_size=0.5, random_state=0,
                                                              stratify=labels)
    table(IRIS_FEATURES, x_holdout)
    table(IRIS_LABELS, np.asarray(y_holdout))
    table(IRIS_TRAIN_FEATURES, x_train)  # the playground's trainingData (the training submission's data)
    table(IRIS_TRAIN_LABELS, np.asarray(y_train))
    diabetes = load_diabetes(as_frame=True)
    _, d_holdout, _, t_holdout = train_test_split(diabetes.data, diabetes.target, test_size=0.4, random_state=0)
    table(DIABETES_FEATURES, d_holdout)
    table(DIABETES_LABELS, t_holdout.to_numpy())
    model = _iris_model(x_train, y_train)
    files[MODEL] = _model_archive(model, x_train, directory / MODEL)
    files[PREDICTIONS] = _predictions(model, x_holdout, directory / PREDICTIONS)
    return files


def seed(upload: Upload, cache: Path | None = None) -> list[str]:
    """Hand each example object to ``upload`` (built now, or taken from ``cache``); returns their ``s3://`` URIs."""
    if cache is None:
        with tempfile.TemporaryDirectory(prefix="podium-examples-") as scratch:
            return _upload_all(build(Path(scratch)), upload)
    return _upload_all(cached(cache), upload)


def cached(cache: Path) -> dict[str, Path]:
    """The example objects in ``cache/<fingerprint>/``, built there first if they are not (others removed)."""
    directory = cache / fingerprint()
    if not all((directory / key).is_file() for key in KEYS):
        cache.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
        build(partial)
        for stale in cache.iterdir():
            if stale != partial:
                shutil.rmtree(stale, ignore_errors=True)
        partial.rename(directory)  # complete, or not there at all
    return {key: directory / key for key in KEYS}


def fingerprint() -> str:
    """What the objects depend on: this module, the SDK modules that write them, scikit-learn's version."""
    sdk = Path(podium.__file__).parent
    sources = [Path(__file__), *sorted((sdk / "artifacts").glob("*.py")), sdk / "predictions.py", sdk / "data.py"]
    digest = hashlib.sha256(importlib.metadata.version("scikit-learn").encode())
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _upload_all(files: dict[str, Path], upload: Upload) -> list[str]:
    for key, path in files.items():
        upload(key, path)
    return [f"s3://{BUCKET}/{key}" for key in files]


def _iris_model(features: Any, labels: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, labels)


def _model_archive(model: Any, example: Any, path: Path) -> Path:
    from podium.artifacts import save_submission

    path.parent.mkdir(parents=True, exist_ok=True)
    save_submission(model, path, example_data=example, class_labels=IRIS_CLASSES, task="classification")
    return path


def _predictions(model: Any, features: Any, path: Path) -> Path:
    from podium.predictions import Predictions, save_predictions

    path.parent.mkdir(parents=True, exist_ok=True)
    return save_predictions(Predictions(model.predict(features), model.predict_proba(features),
                                        np.asarray(model.classes_)), path)


def main(argv: Sequence[str] | None = None) -> None:
    """Store the example objects in the object store at ``--endpoint`` (credentials: ``AWS_*``)."""
    import minio

    parser = argparse.ArgumentParser(prog="podium-local-examples")
    parser.add_argument("--endpoint", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--bucket", default=BUCKET)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--cache", type=Path, default=None, help="keep the built objects here, for the next time")
    args = parser.parse_args(argv)
    client = minio.Minio(args.endpoint.removeprefix("http://"), access_key=os.environ["AWS_ACCESS_KEY_ID"],
                         secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], region=args.region, secure=False)
    for uri in seed(lambda key, path: _upload(client, args.bucket, key, path), args.cache):
        print(uri, flush=True)


def _upload(client: Any, bucket: str, key: str, path: Path) -> None:
    client.fput_object(bucket, key, str(path))


if __name__ == "__main__":
    main()
