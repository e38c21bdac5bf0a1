"""The trusted stage step: what it puts on the volume for the predict step, and its errors."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from podium.artifacts import pack, save_preprocessor, save_submission
from podium.errors import PodiumError
from podium.evaluation.predict import run_predict
from podium.evaluation.stage import STAGED_PREPROCESSOR, run_stage, staged_features_name
from podium.predictions import load_predictions


def double(features):
    """A preprocessor the model cannot do without: its input is far from the raw features."""
    return np.asarray(features, dtype=float) * 2.0 - 10.0


@pytest.fixture
def submission(iris, tmp_path: Path) -> tuple[Path, Path, Path, object]:
    """A model trained on doubled features, its preprocessor packed on its own, the features as CSV."""
    from sklearn.linear_model import LogisticRegression

    features, labels = iris
    model = LogisticRegression(max_iter=500).fit(double(features), labels)
    artifact = pack(save_submission(model, tmp_path / "model") and tmp_path / "model")
    save_preprocessor(double, tmp_path / "double")
    features_csv = tmp_path / "features.csv"
    features.to_csv(features_csv, index=False)
    return artifact, pack(tmp_path / "double"), features_csv, model


def test_stages_model_features_and_a_separate_preprocessor_for_predict(submission, iris, tmp_path: Path) -> None:
    artifact, preprocessor, features, model = submission
    dest = run_stage(artifact=str(artifact), features=str(features), dest=tmp_path / "data",
                     preprocessor=str(preprocessor))
    assert (dest / STAGED_PREPROCESSOR / "preprocessor.json").is_file()
    staged_features = dest / staged_features_name(str(features))
    assert staged_features.read_bytes() == features.read_bytes()
    assert stat.S_IMODE((dest / "out").stat().st_mode) == 0o777  # predict runs as another user
    result = run_predict(dest / "model", staged_features, dest / "out", preprocessor=dest / STAGED_PREPROCESSOR)
    assert (load_predictions(result.predictions).labels == model.predict(double(iris[0]))).all()
    without = run_predict(dest / "model", staged_features, tmp_path / "without")
    assert (load_predictions(without.predictions).labels != load_predictions(result.predictions).labels).any()


def test_a_retried_stage_starts_clean(submission, tmp_path: Path) -> None:
    artifact, preprocessor, features, _ = submission
    dest = tmp_path / "data"
    run_stage(artifact=str(artifact), features=str(features), dest=dest, preprocessor=str(preprocessor))
    (dest / STAGED_PREPROCESSOR / "leftover").write_text("from a failed attempt")
    run_stage(artifact=str(artifact), features=str(features), dest=dest, preprocessor=str(preprocessor))
    assert not (dest / STAGED_PREPROCESSOR / "leftover").exists()


def test_missing_preprocessor_names_the_submission_field(submission, tmp_path: Path) -> None:
    artifact, _, features, _ = submission
    with pytest.raises(PodiumError) as error:
        run_stage(artifact=str(artifact), features=str(features), dest=tmp_path / "data",
                  preprocessor=str(tmp_path / "nope.tar.gz"))
    assert error.value.field == "model.preprocessorUri"

    log = tmp_path / "termination-log"
    completed = subprocess.run(
        [sys.executable, "-m", "podium.evaluation.stage", "--artifact", str(artifact), "--features", str(features),
         "--dest", str(tmp_path / "cli"), "--preprocessor", str(tmp_path / "nope.tar.gz")],
        capture_output=True, text=True, env={"PODIUM_TERMINATION_LOG": str(log), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 1
    assert log.read_text().startswith("could not stage the submission: model.preprocessorUri: ")


def test_image_features_are_staged_as_npy_and_predicted(tmp_path: Path) -> None:
    """An N-d holdout keeps its .npy suffix on the volume, which is how the predict step reads it."""
    from podium.data import write_table
    from tests.digits import digits_split, sklearn_flat

    train_x, test_x, train_y, _ = digits_split()
    model, example, native = sklearn_flat(train_x, train_y)
    artifact = pack(save_submission(model, tmp_path / "model", example_data=example) and tmp_path / "model")
    features = write_table(test_x, tmp_path / "features.npy")
    dest = run_stage(artifact=str(artifact), features=str(features), dest=tmp_path / "data")
    staged = dest / staged_features_name(str(features))
    assert staged.name == "features.npy"
    result = run_predict(dest / "model", staged, dest / "out")
    np.testing.assert_array_equal(load_predictions(result.predictions).labels, native(test_x))
