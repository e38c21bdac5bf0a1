"""Framework adapters: detection, save/load round trips, ONNX agreement and output rules."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.artifacts import load_submission, read_manifest, save_submission
from podium.frameworks import (
    CorruptModel,
    Framework,
    ModelOutput,
    ModelOutputError,
    UnknownFramework,
    get_adapter,
)
from podium.frameworks.base import fit_rows
from podium.frameworks.detect import detect_framework, detect_model
from podium.frameworks.outputs import to_predictions

ONNX_TOLERANCE = 1e-4
IRIS = ["setosa", "versicolor", "virginica"]


def test_live_models_are_detected(trained) -> None:
    assert detect_model(trained.model).framework == Framework(trained.framework)


def test_an_unknown_object_is_rejected_with_the_supported_list() -> None:
    with pytest.raises(UnknownFramework, match="scikit-learn estimator") as caught:
        detect_model(object())
    assert caught.value.field == "model"


def test_unknown_framework_name() -> None:
    with pytest.raises(UnknownFramework, match="xgboost.*Fix: use one of"):
        get_adapter("xgboost")


def test_round_trip_gives_identical_predictions(trained, native_proba) -> None:
    loaded = load_submission(trained.artifact)
    predictions = loaded.predict(trained.features)

    assert loaded.framework is Framework(trained.framework)
    np.testing.assert_allclose(predictions.proba, native_proba(trained), rtol=0, atol=1e-6)
    assert list(predictions.classes) == trained.class_labels
    expected = np.asarray(trained.class_labels)[native_proba(trained).argmax(axis=1)]
    assert (predictions.labels == expected).all()


def test_round_trip_is_exact_for_scikit_learn(sklearn_clf) -> None:
    predictions = load_submission(sklearn_clf.artifact).predict(sklearn_clf.features)
    assert (predictions.labels == sklearn_clf.model.predict(sklearn_clf.features)).all()
    assert np.array_equal(predictions.proba, sklearn_clf.model.predict_proba(sklearn_clf.features))


def test_regression_round_trip(sklearn_reg) -> None:
    loaded = load_submission(sklearn_reg.artifact)
    predictions = loaded.predict(sklearn_reg.features)
    assert loaded.task == "regression" and predictions.proba is None
    assert np.array_equal(predictions.labels, sklearn_reg.model.predict(sklearn_reg.features))


@pytest.mark.parametrize("fixture", ["sklearn_clf", "torch_clf", "keras_clf", "onnx_clf", "sklearn_reg"])
def test_onnx_export_agrees_with_native(fixture: str, request: pytest.FixtureRequest) -> None:
    trained = request.getfixturevalue(fixture)
    manifest = read_manifest(trained.artifact)
    assert manifest.onnx.available, manifest.onnx.error
    assert manifest.onnx.opset and (trained.artifact / manifest.onnx.path).is_file()
    assert manifest.onnx.checked  # on the example data, labels included

    native = load_submission(trained.artifact).predict(trained.features)
    exported = load_submission(trained.artifact, runtime="onnx").predict(trained.features)
    auto = load_submission(trained.artifact, runtime="auto")
    assert auto.runtime == ("native" if trained.framework == "onnx" else "onnx")

    if native.proba is None:
        np.testing.assert_allclose(exported.labels, native.labels, rtol=ONNX_TOLERANCE)
    else:
        np.testing.assert_allclose(exported.proba, native.proba, atol=ONNX_TOLERANCE)
        assert list(exported.classes) == list(native.classes)


def test_keras_records_a_saved_model_for_kserve(keras_clf) -> None:
    manifest = read_manifest(keras_clf.artifact)
    assert manifest.model.saved_model == "model/saved_model"
    assert (keras_clf.artifact / "model/saved_model/saved_model.pb").is_file()


def test_unregistered_keras_classes_fall_back_to_the_saved_model(keras_clf, tmp_path: Path) -> None:
    import keras

    class Unregistered(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.hidden, self.out = keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    model = Unregistered()
    with pytest.warns(UserWarning, match="evaluate its TF SavedModel export instead"):
        manifest = save_submission(model, tmp_path / "a", example_data=keras_clf.features, class_labels=IRIS)
    assert (manifest.model.format, manifest.model.path) == ("tf_saved_model", "model/saved_model")
    logits = np.asarray(model(keras_clf.features))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        load_submission(tmp_path / "a").predict(keras_clf.features).proba, expected, atol=1e-5
    )


def test_torch_is_saved_with_torch_export(torch_clf) -> None:
    model = read_manifest(torch_clf.artifact).model
    assert (model.format, model.path, model.input_dtype) == ("torch.export", "model/model.pt2", "float32")


@pytest.mark.parametrize("fixture", ["sklearn_clf", "torch_clf", "keras_clf", "onnx_clf"])
def test_detection_without_manifest(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    trained = request.getfixturevalue(fixture)
    copy = shutil.copytree(trained.artifact, tmp_path / "copy")
    (copy / "manifest.json").unlink()
    native_file = copy / read_manifest(trained.artifact).model.path

    assert detect_framework(copy) is Framework(trained.framework)
    assert detect_framework(native_file) is Framework(trained.framework)
    without = load_submission(copy).predict(trained.features)
    with_manifest = load_submission(trained.artifact).predict(trained.features)
    # without a manifest the class names are unknown, so torch/keras/onnx columns are indices
    np.testing.assert_allclose(without.proba, with_manifest.proba, atol=1e-6)


def test_detection_prefers_the_manifest(sklearn_clf) -> None:
    assert detect_framework(sklearn_clf.artifact) is Framework.SKLEARN


def test_torch_without_example_is_scripted(torch_clf, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no example: ONNX export is impossible and says so
        manifest = save_submission(torch_clf.model, tmp_path / "a", class_labels=torch_clf.class_labels)
    assert manifest.model.format == "torchscript"
    assert not manifest.onnx.available and "example" in manifest.onnx.error
    predictions = load_submission(tmp_path / "a").predict(torch_clf.features)
    reference = load_submission(torch_clf.artifact).predict(torch_clf.features)
    np.testing.assert_allclose(predictions.proba, reference.proba, atol=1e-6)


def numpy_in_the_middle() -> type:
    """A module class that leaves torch for NumPy mid-forward: no compiler can capture it faithfully.

    Built on demand (so collecting this file does not import torch) and published as this
    module's ``NumpyNet``, which is how the state_dict fallback will import it by name.
    """
    import torch

    class NumpyNet(torch.nn.Module):
        def __init__(self, n_in: int = 13, n_out: int = 3) -> None:
            super().__init__()
            self.n_in, self.n_out = n_in, n_out
            self.linear = torch.nn.Linear(n_in, n_out)

        def forward(self, x):
            clipped = np.clip(x.detach().numpy(), -1.0, 1.0)
            return self.linear(torch.from_numpy(clipped))

    NumpyNet.__qualname__ = "NumpyNet"
    globals()["NumpyNet"] = NumpyNet
    return NumpyNet


def test_torch_falls_back_to_state_dict_and_architecture(wine, tmp_path: Path) -> None:
    import torch

    features, _ = wine
    model = numpy_in_the_middle()()
    with pytest.warns(UserWarning, match="state_dict|ONNX export"):
        manifest = save_submission(
            model, tmp_path / "a", example_data=features[:8], class_labels=["a", "b", "c"]
        )
    assert manifest.model.format == "state_dict"
    assert manifest.model.architecture == f"{__name__}:NumpyNet"
    assert manifest.model.init_kwargs == {"n_in": 13, "n_out": 3}
    assert not manifest.onnx.available  # the exporter baked in the example batch; validation caught it

    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(features)), dim=1).numpy()
    np.testing.assert_allclose(load_submission(tmp_path / "a").predict(features).proba, expected, atol=1e-6)


def test_truncated_model_files_name_the_problem(trained, tmp_path: Path) -> None:
    model_file = trained.artifact / read_manifest(trained.artifact).model.path
    damaged = tmp_path / model_file.name
    damaged.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])

    with pytest.raises(CorruptModel, match="truncated or corrupt|cannot be read|cannot be loaded") as caught:
        load_submission(damaged)
    assert "Fix:" in str(caught.value)


def test_adapters_report_corrupt_files(trained, tmp_path: Path) -> None:
    files = read_manifest(trained.artifact).model
    (tmp_path / "model").mkdir()
    source = trained.artifact / files.path
    (tmp_path / files.path).write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    with pytest.raises(CorruptModel, match=files.path):
        get_adapter(trained.framework).load(tmp_path, files)


def test_unrecognised_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"definitely not a model")
    with pytest.raises(UnknownFramework, match="model.bin is not a model file"):
        load_submission(path)


class TestOutputs:
    """to_predictions: the one place raw outputs become labels and probabilities."""

    def test_logits_go_through_softmax(self) -> None:
        logits = np.array([[2.0, -1.0, 0.5], [-3.0, 4.0, 0.0]])
        predictions = to_predictions(ModelOutput(scores=logits), rows=2, class_labels=["a", "b", "c"])
        expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(predictions.proba, expected)
        assert list(predictions.labels) == ["a", "b"]

    def test_probabilities_pass_through(self) -> None:
        proba = np.array([[0.2, 0.8], [0.9, 0.1]])
        predictions = to_predictions(ModelOutput(scores=proba), rows=2, class_labels=[0, 1])
        assert np.array_equal(predictions.proba, proba)

    def test_single_sigmoid_column_is_binary(self) -> None:
        predictions = to_predictions(
            ModelOutput(scores=np.array([[0.25], [0.75]])), rows=2, class_labels=["no", "yes"]
        )
        np.testing.assert_allclose(predictions.proba, [[0.75, 0.25], [0.25, 0.75]])
        assert list(predictions.labels) == ["no", "yes"]

    def test_single_logit_column_gets_a_sigmoid(self) -> None:
        predictions = to_predictions(
            ModelOutput(scores=np.array([[0.0], [10.0]])), rows=2, task="classification"
        )
        np.testing.assert_allclose(predictions.proba[:, 1], [0.5, 1 / (1 + np.exp(-10))])

    def test_regression_takes_one_column(self) -> None:
        predictions = to_predictions(ModelOutput(scores=np.array([[1.5], [2.5]])), rows=2, task="regression")
        assert predictions.proba is None and list(predictions.labels) == [1.5, 2.5]

    def test_wrong_row_count(self) -> None:
        with pytest.raises(ModelOutputError, match="returned 3 rows for 4 input rows"):
            to_predictions(ModelOutput(labels=np.zeros(3)), rows=4)

    def test_class_count_mismatch(self) -> None:
        with pytest.raises(ModelOutputError, match="4 score column.*3 class labels.*Fix:"):
            to_predictions(ModelOutput(scores=np.zeros((2, 4))), rows=2, class_labels=["a", "b", "c"])

    def test_multi_output_regression_is_refused(self) -> None:
        with pytest.raises(ModelOutputError, match="one value per row"):
            to_predictions(ModelOutput(scores=np.zeros((2, 2))), rows=2, task="regression")


def test_onnx_probability_columns_follow_the_graphs_class_order_not_the_playgrounds():
    """skl2onnx sorts classes; a playground may list them in another order."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    from podium.frameworks import get_adapter
    from podium.frameworks.outputs import to_predictions

    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X.astype(np.float32), names)
    proto = to_onnx(forest, X[:1].astype(np.float32), options={id(forest): {"zipmap": False}})
    playground_order = ["virginica", "setosa", "versicolor"]
    output = get_adapter("onnx").wrap(proto).predict(X.astype(np.float32))
    predictions = to_predictions(output, rows=len(X), class_labels=playground_order, task="classification")
    columns = [list(predictions.classes).index(label) for label in forest.classes_]
    np.testing.assert_allclose(predictions.proba[:, columns], forest.predict_proba(X.astype(np.float32)), atol=1e-5)


# --- fitting image rows to a model's input shape ------------------------------------------------

_dims = st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple)


@settings(max_examples=300, deadline=None)
@given(rows=st.integers(0, 3), current=_dims, target=_dims)
def test_fit_rows_only_ever_relays_out_the_same_values(rows: int, current: tuple, target: tuple) -> None:
    values = np.arange(rows * int(np.prod(current)), dtype=np.float32).reshape(rows, *current)
    fitted = fit_rows(values, target)
    assert fitted is values or fitted.shape == (rows, *target)
    np.testing.assert_array_equal(fitted.ravel(), values.ravel())  # C order: no value moved
    squeezed = tuple(d for d in current if d != 1), tuple(d for d in target if d != 1)
    if np.prod(current) == np.prod(target) and (squeezed[0] == squeezed[1] or min(map(len, squeezed)) <= 1):
        assert fitted.shape == (rows, *target)


@pytest.mark.parametrize(
    ("current", "target", "fitted"),
    [
        ((8, 8), (8, 8, 1), (8, 8, 1)),  # Keras channels-last
        ((8, 8), (1, 8, 8), (1, 8, 8)),  # torch channels-first
        ((1, 8, 8), (8, 8), (8, 8)),
        ((8, 8), (64,), (64,)),  # a flat-vector model (digits.data)
        ((64,), (8, 8), (8, 8)),
        ((8, 8, 3), (3, 8, 8), (8, 8, 3)),  # a transpose, not a reshape: left for the model to refuse
        ((4, 16), (8, 8), (4, 16)),
        ((8, 8), (8, 9), (8, 8)),
        ((8, 8), ("height", 8, 1), (8, 8)),  # symbolic ONNX dimensions are not guessed
        ((8, 8), (None, 8, 1), (8, 8)),
    ],
)
def test_fit_rows(current: tuple, target: tuple, fitted: tuple) -> None:
    assert fit_rows(np.zeros((5, *current)), target).shape == (5, *fitted)


def test_torch_example_the_model_cannot_take_names_example_data(tmp_path: Path) -> None:
    from podium.frameworks import ModelInputError
    from tests.digits import digits_split, torch_conv

    train_x, _, train_y, _ = digits_split()
    model, _, _ = torch_conv(train_x[:100], train_y[:100])
    with pytest.raises(ModelInputError, match=r"example_data: .*fails on example_data of shape \(64, 8, 8\).*"
                       r"Fix: pass example rows in the shape the model takes"):
        save_submission(model, tmp_path / "sub", example_data=train_x[:64].astype(np.float32))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 40),
    classes=st.integers(2, 40),  # both sides of the column-wise softmax's class limit
    scale=st.floats(0.01, 200.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_logits_become_the_row_wise_softmax(rows: int, classes: int, scale: float, dtype, seed: int) -> None:
    logits = (np.random.default_rng(seed).normal(size=(rows, classes)) * scale).astype(dtype)
    predictions = to_predictions(ModelOutput(scores=logits), rows=rows, class_labels=list(range(classes)))
    wide = logits.astype(np.float64)
    expected = np.exp(wide - wide.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert predictions.proba is not None and predictions.proba.dtype == np.float64
    np.testing.assert_allclose(predictions.proba, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(predictions.labels, expected.argmax(axis=1))


def test_a_float32_distribution_is_kept_as_it_is() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    predictions = to_predictions(ModelOutput(scores=proba), rows=2, class_labels=["a", "b"])
    assert predictions.proba is proba and list(predictions.labels) == ["b", "a"]
