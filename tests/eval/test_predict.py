"""The untrusted predict step: run_predict, its CLI, and the errors a submitter sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from podium.artifacts import PreprocessorError, save_preprocessor, save_submission
from podium.errors import PodiumError
from podium.evaluation.predict import MAX_MESSAGE_BYTES, failure_message, run_predict
from podium.frameworks import ModelOutputError, ModelRuntimeError, UnknownFramework
from podium.predictions import load_predictions

REPO = Path(__file__).resolve().parents[2]


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _npy(values: np.ndarray, path: Path) -> Path:
    np.save(path, values)
    return path


def test_writes_predictions_and_metadata(sklearn_clf, tmp_path: Path) -> None:
    features = _csv(sklearn_clf.features, tmp_path / "features.csv")
    result = run_predict(sklearn_clf.artifact, features, tmp_path / "out")

    predictions = load_predictions(result.predictions)
    assert (predictions.labels == sklearn_clf.model.predict(sklearn_clf.features)).all()
    np.testing.assert_allclose(
        predictions.proba, sklearn_clf.model.predict_proba(sklearn_clf.features), atol=1e-12
    )
    assert list(predictions.classes) == sklearn_clf.class_labels
    metadata = json.loads(result.metadata.read_text())
    assert metadata["framework"] == "sklearn" and metadata["predict_rows"] == 150
    assert metadata["clf__C"] == 0.5 and metadata["onnx_available"] is True
    assert result.rows == 150 and result.has_proba


def test_batches_give_the_same_answer(torch_clf, tmp_path: Path) -> None:
    features = _npy(torch_clf.features, tmp_path / "features.npy")
    whole = run_predict(torch_clf.artifact, features, tmp_path / "whole")
    batched = run_predict(torch_clf.artifact, features, tmp_path / "batched", batch_rows=17)
    assert (whole.batches, batched.batches) == (1, 11)
    np.testing.assert_allclose(
        load_predictions(batched.predictions).proba, load_predictions(whole.predictions).proba, atol=1e-6
    )


def test_every_framework(trained, tmp_path: Path, native_proba) -> None:
    features = _npy(np.asarray(trained.features, dtype=np.float32), tmp_path / "features.npy")
    result = run_predict(trained.artifact, features, tmp_path / "out")
    np.testing.assert_allclose(load_predictions(result.predictions).proba, native_proba(trained), atol=1e-5)


def scale_then_square(frame):
    """Defined in the test module, which the predict subprocess cannot import: pickled by value."""
    return (np.asarray(frame, dtype=np.float64) / 10.0) ** 2


def add_one(values):
    return values + 1.0


def test_cli_in_a_subprocess(iris, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    features, labels = iris
    # the preprocessor and a pipeline step are this module's code, which the subprocess cannot import
    model = make_pipeline(FunctionTransformer(add_one), LogisticRegression(max_iter=500))
    model.fit(scale_then_square(features), labels)
    with pytest.warns(UserWarning, match="FunctionTransformer is not supported"):  # by skl2onnx
        save_submission(model, tmp_path / "sub.tar.gz", preprocessor=scale_then_square, example_data=features)
    log = tmp_path / "termination-log"
    completed = _cli(
        tmp_path / "sub.tar.gz", _csv(features, tmp_path / "features.csv"), tmp_path / "out", log
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["rows"] == 150
    predictions = load_predictions(tmp_path / "out" / "predictions.npz")
    assert (predictions.labels == model.predict(scale_then_square(features))).all()
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["has_preprocessor"] is True
    assert not log.exists()


def test_a_separately_submitted_preprocessor(iris, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    features, labels = iris
    model = LogisticRegression(max_iter=500).fit(scale_then_square(features), labels)
    save_submission(model, tmp_path / "model")
    save_preprocessor(scale_then_square, tmp_path / "preprocessor")
    result = run_predict(
        tmp_path / "model",
        _csv(features, tmp_path / "f.csv"),
        tmp_path / "out",
        preprocessor=tmp_path / "preprocessor",
    )
    assert (load_predictions(result.predictions).labels == model.predict(scale_then_square(features))).all()


def test_cli_failure_reaches_the_termination_log(tmp_path: Path, iris) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08 truncated")
    log = tmp_path / "termination-log"
    completed = _cli(archive, _csv(iris[0], tmp_path / "features.csv"), tmp_path / "out", log)

    assert completed.returncode == 1
    message = log.read_text()
    assert message.startswith("predict failed: artifact: broken.tar.gz is not a readable .tar.gz")
    assert "Fix:" in message and "\n" not in message and len(message.encode()) <= MAX_MESSAGE_BYTES
    assert message in completed.stderr
    assert not (tmp_path / "out" / "predictions.npz").exists()


def test_cli_takes_the_log_path_from_the_environment(tmp_path: Path) -> None:
    log = tmp_path / "from-env"
    completed = _cli(
        tmp_path / "missing",
        tmp_path / "features.csv",
        tmp_path / "out",
        None,
        {"PODIUM_TERMINATION_LOG": str(log)},
    )
    assert completed.returncode == 1 and "does not exist" in log.read_text()


class TestBadInput:
    def test_corrupt_pickle(self, sklearn_clf, tmp_path: Path) -> None:
        model = tmp_path / "model.pkl"
        model.write_bytes((sklearn_clf.artifact / "model" / "model.pkl").read_bytes()[:200])
        with pytest.raises(PodiumError, match="model.pkl .*truncated or corrupt.*Fix:"):
            run_predict(model, _csv(sklearn_clf.features, tmp_path / "f.csv"), tmp_path / "out")

    def test_corrupt_onnx(self, onnx_clf, tmp_path: Path) -> None:
        model = tmp_path / "model.onnx"
        model.write_bytes((onnx_clf.artifact / "model" / "model.onnx").read_bytes()[:300])
        with pytest.raises(PodiumError, match="model.onnx is named like a onnx model.*truncated"):
            run_predict(model, _npy(onnx_clf.features, tmp_path / "f.npy"), tmp_path / "out")

    def test_unknown_framework(self, tmp_path: Path) -> None:
        (tmp_path / "artifact").mkdir()
        (tmp_path / "artifact" / "weights.bin").write_bytes(os.urandom(64))
        with pytest.raises(UnknownFramework, match=r"weights.bin.*not a model file.*Fix: submit"):
            run_predict(tmp_path / "artifact", _npy(np.zeros((2, 2)), tmp_path / "f.npy"), tmp_path / "out")

    def test_preprocessor_that_raises(self, iris, tmp_path: Path) -> None:
        from sklearn.dummy import DummyClassifier

        def needs_a_column(frame):
            return frame[["sepal length (cm)", "colour"]]

        model = DummyClassifier().fit(iris[0], iris[1])
        with pytest.warns(UserWarning, match="ONNX export of the sklearn model failed"):
            save_submission(model, tmp_path / "sub", preprocessor=needs_a_column)
        with pytest.raises(
            PreprocessorError, match=r"preprocessor raised KeyError: .*colour.*Fix: run the preprocessor"
        ):
            run_predict(tmp_path / "sub", _csv(iris[0], tmp_path / "f.csv"), tmp_path / "out")

    def test_model_output_length_differs(self, iris, tmp_path: Path) -> None:
        with pytest.warns(UserWarning, match="number of input features is unknown"):
            save_submission(DropsTheLastRow().fit(*iris), tmp_path / "sub")
        with pytest.raises(ModelOutputError, match="returned 149 rows for 150 input rows.*Fix:"):
            run_predict(tmp_path / "sub", _csv(iris[0], tmp_path / "f.csv"), tmp_path / "out")

    def test_model_that_raises(self, torch_clf, tmp_path: Path) -> None:
        narrow = _npy(torch_clf.features[:, :5], tmp_path / "f.npy")
        with pytest.raises(PodiumError, match=r"per-row shape \(5,\).*\(13,\)"):
            run_predict(torch_clf.artifact, narrow, tmp_path / "out")
        copy = tmp_path / "no-schema"
        with pytest.warns(UserWarning, match="needs example input"):  # no example: no ONNX, no schema check
            save_submission(torch_clf.model, copy, class_labels=torch_clf.class_labels)
        with pytest.raises(ModelRuntimeError, match="pytorch model raised RuntimeError"):
            run_predict(copy, narrow, tmp_path / "out")

    def test_empty_features(self, sklearn_clf, tmp_path: Path) -> None:
        with pytest.raises(PodiumError, match="has no rows"):
            run_predict(
                sklearn_clf.artifact,
                _csv(sklearn_clf.features.iloc[:0], tmp_path / "f.csv"),
                tmp_path / "out",
            )


class DropsTheLastRow:
    """A scikit-learn look-alike whose predict loses a row."""

    def fit(self, features, labels):
        self.majority_ = int(np.bincount(labels).argmax())
        return self

    def get_params(self, deep: bool = True) -> dict:
        return {}

    def predict(self, features):
        return np.full(len(features) - 1, self.majority_)


def test_failure_message_is_one_bounded_paragraph() -> None:
    message = failure_message(ValueError("line one\nline two " + "x" * 10_000))
    assert "\n" not in message and len(message.encode()) <= MAX_MESSAGE_BYTES and message.endswith("...")
    assert message.startswith("predict failed unexpectedly: ValueError: line one line two")


def _cli(artifact: Path, features: Path, out: Path, log: Path | None, env: dict[str, str] | None = None):
    command = [
        sys.executable,
        "-m",
        "podium.evaluation.predict",
        "--artifact",
        str(artifact),
        "--features",
        str(features),
    ]
    command += ["--out", str(out)] + (["--termination-log", str(log)] if log else [])
    environment = {key: value for key, value in os.environ.items() if key != "PODIUM_TERMINATION_LOG"}
    environment |= {"PYTHONPATH": f"{REPO / 'sdk'}{os.pathsep}{REPO / 'operator'}", **(env or {})}
    # run outside the repository so nothing is imported from the test tree by accident
    return subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=120, cwd=out.parent
    )


# --- image (N-d) holdouts ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_split():
    from tests.digits import digits_split

    return digits_split()


@pytest.mark.parametrize("kind", ["sklearn", "sklearn-flat", "keras", "keras-2d", "pytorch", "onnx"])
def test_image_holdout_is_scored_like_the_models_own_predictions(kind: str, digits_split, tmp_path: Path) -> None:
    """(n, 8, 8) images stored as .npy reach each framework in the shape it was saved with."""
    import warnings

    from podium.data import write_table
    from tests.digits import BUILDERS

    train_x, test_x, train_y, test_y = digits_split
    model, example, native = BUILDERS[kind](train_x, train_y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_submission(model, tmp_path / "sub", example_data=example, class_labels=list(range(10)))
    features = write_table(test_x, tmp_path / "features.npy")
    result = run_predict(tmp_path / "sub", features, tmp_path / "out", batch_rows=100)

    labels = load_predictions(result.predictions).labels
    assert result.rows == len(test_x) and result.batches == 6
    np.testing.assert_array_equal(labels.astype(int), native(test_x))
    assert np.mean(labels.astype(int) == test_y) > 0.85


def test_keras_conv_saved_with_holdout_shaped_examples(digits_split, tmp_path: Path) -> None:
    """Input((8, 8, 1)) but example rows of (8, 8): the model's declared input shape gets its channel axis."""
    import warnings

    from tests.digits import keras_conv

    train_x, test_x, train_y, _ = digits_split
    model, _, native = keras_conv(train_x, train_y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = save_submission(model, tmp_path / "sub", example_data=train_x, class_labels=list(range(10)))
    assert manifest.onnx.available, manifest.onnx.error
    result = run_predict(tmp_path / "sub", _npy(test_x, tmp_path / "f.npy"), tmp_path / "out")
    np.testing.assert_array_equal(load_predictions(result.predictions).labels.astype(int), native(test_x))
    onnx = run_predict(tmp_path / "sub", tmp_path / "f.npy", tmp_path / "onnx", runtime="onnx")
    np.testing.assert_array_equal(load_predictions(onnx.predictions).labels.astype(int), native(test_x))


def test_image_rows_that_are_not_a_reshape_of_the_examples_are_refused(digits_split, tmp_path: Path) -> None:
    from tests.digits import torch_conv

    train_x, test_x, train_y, _ = digits_split
    model, example, _ = torch_conv(train_x, train_y)
    save_submission(model, tmp_path / "sub", example_data=example, class_labels=list(range(10)))
    wrong = _npy(test_x[:, :4, :], tmp_path / "f.npy")  # (4, 8): 32 values per row, not 64
    with pytest.raises(PodiumError, match=r"per-row shape \(4, 8\).*\(1, 8, 8\)"):
        run_predict(tmp_path / "sub", wrong, tmp_path / "out")


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_image_features_round_trip_through_numpy_files(suffix: str, digits_split, tmp_path: Path) -> None:
    from podium.data import read_features, table_suffix, write_table

    images = digits_split[1]
    assert table_suffix(images) == ".npy" and table_suffix(images.reshape(len(images), -1)) == ".csv"
    np.testing.assert_array_equal(read_features(write_table(images, tmp_path / f"x{suffix}")), images)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_image_features_are_refused_by_tables_with_the_fix(suffix: str, digits_split, tmp_path: Path) -> None:
    from podium.data import write_table
    from podium.errors import InvalidHoldout

    with pytest.raises(InvalidHoldout, match=r"shape \(\d+, 8, 8\) has 3 dimensions.*Fix: store .*\.npy"):
        write_table(digits_split[1], tmp_path / f"x{suffix}")


@pytest.mark.parametrize(("text", "cpus"), [
    ("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000", 2), ("50000 100000", 1),
    ("-1 100000", None), ("", None), ("garbage", None), ("0 100000", None),
])
def test_cgroup_cpu_quota_in_whole_cpus(text: str, cpus: int | None) -> None:
    from podium.frameworks.base import quota_cpus

    assert quota_cpus(text) == cpus


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs a quota below the visible CPUs")
def test_thread_pools_follow_the_pods_cpu_limit(tmp_path: Path) -> None:
    """Under a one-CPU quota torch (and the BLAS, TensorFlow and onnxruntime pools) get one thread."""
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    script = (
        "import os, sys; from pathlib import Path; import podium.frameworks.base as base; "
        f"base._CGROUP_V2 = Path({str(tmp_path / 'cpu.max')!r}); "
        "from podium.evaluation.predict import fit_threads_to_cpu_limit; limit = fit_threads_to_cpu_limit(); "
        "import torch; print(limit, os.environ['TF_NUM_INTRAOP_THREADS'], torch.get_num_threads())"
    )
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          timeout=120)
    assert done.stdout.split() == ["1", "1", "1"], done.stderr[-2000:]


def test_the_auto_runtime_evaluates_only_an_export_checked_at_saving(torch_clf, tmp_path: Path) -> None:
    features = _npy(torch_clf.features, tmp_path / "features.npy")
    native = run_predict(torch_clf.artifact, features, tmp_path / "native")
    auto = run_predict(torch_clf.artifact, features, tmp_path / "auto", runtime="auto")
    assert json.loads(auto.metadata.read_text())["runtime"] == "onnx"
    assert json.loads(native.metadata.read_text())["runtime"] == "native"
    np.testing.assert_array_equal(load_predictions(auto.predictions).labels, load_predictions(native.predictions).labels)

    unchecked = tmp_path / "unchecked"  # exported without example data: nothing was compared
    with pytest.warns(UserWarning):
        save_submission(torch_clf.model, unchecked, class_labels=torch_clf.class_labels)
    result = run_predict(unchecked, features, tmp_path / "out", runtime="auto")
    assert json.loads(result.metadata.read_text())["runtime"] == "native"
