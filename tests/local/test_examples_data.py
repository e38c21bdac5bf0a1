"""``podium local up`` stores every object the manifests in ``examples/`` name (the end-to-end check that each
example then becomes Ready or Evaluated is tests/integration/test_examples_local.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from podium.data import read_features, read_labels
from podium.predictions import load_predictions
from podium_operator.local import examples
from tests.local.conftest import REPO_ROOT

URI = re.compile(r"s3://podium/([^\s\"']+)")


def test_every_object_an_example_names_is_built_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = {key for path in (REPO_ROOT / "examples").glob("*.yaml") for key in URI.findall(path.read_text())}
    assert named == set(examples.KEYS)
    assert examples.EXAMPLES_DIR == REPO_ROOT / "examples"
    files = examples.cached(tmp_path)
    built = {key: path.stat().st_mtime_ns for key, path in files.items()}
    assert examples.cached(tmp_path) == files and {k: p.stat().st_mtime_ns for k, p in files.items()} == built
    assert set(files) == named and all(path.is_file() for path in files.values())
    features, labels = read_features(files[examples.IRIS_FEATURES]), read_labels(files[examples.IRIS_LABELS])
    assert len(features) == len(labels) == 75 and set(labels) == set(examples.IRIS_CLASSES)
    assert len(read_features(files[examples.DIABETES_FEATURES])) == len(read_labels(files[examples.DIABETES_LABELS]))
    predictions = load_predictions(files[examples.PREDICTIONS])
    assert len(predictions) == 75 and np.mean(predictions.labels == labels) > 0.8
    monkeypatch.setattr(examples, "fingerprint", lambda: "changed")  # e.g. the SDK's artifact code changed
    assert set(examples.cached(tmp_path)) == named and [p.name for p in tmp_path.iterdir()] == ["changed"]
