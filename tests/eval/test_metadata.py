"""Leaderboard metadata: flat scalar columns whose counts equal each framework's own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from podium.artifacts import read_manifest
from podium.metadata import extract_metadata


def test_values_are_flat_json_scalars(trained) -> None:
    metadata = read_manifest(trained.artifact).metadata
    assert metadata["ml_framework"] == trained.framework
    for key, value in metadata.items():
        assert isinstance(key, str)
        assert value is None or isinstance(value, str | int | float | bool), key
    json.dumps(metadata, allow_nan=False)


def test_model_size_is_the_saved_file(trained) -> None:
    manifest = read_manifest(trained.artifact)
    assert manifest.metadata["model_size_bytes"] == (trained.artifact / manifest.model.path).stat().st_size


class TestSklearn:
    def test_pipeline_hyperparameters_are_flattened(self, sklearn_clf) -> None:
        metadata = read_manifest(sklearn_clf.artifact).metadata
        assert metadata["model_type"] == "Pipeline" and metadata["final_estimator"] == "LogisticRegression"
        assert metadata["estimator_type"] == "classifier" and metadata["deep_learning"] is False
        assert metadata["clf__C"] == 0.5 and metadata["clf__max_iter"] == 500
        assert metadata["clf"] == "LogisticRegression" and metadata["scale__with_mean"] is True
        assert "steps" not in metadata  # repeats the flattened columns
        assert metadata["n_features"] == 4 and metadata["n_classes"] == 3
        assert metadata["n_params"] == 3 * 4 + 3  # coef_ + intercept_
        assert metadata["optimizer"] == "lbfgs"

    def test_nested_estimators(self, iris) -> None:
        from sklearn.ensemble import BaggingClassifier
        from sklearn.tree import DecisionTreeClassifier

        model = BaggingClassifier(
            estimator=DecisionTreeClassifier(max_depth=2), n_estimators=3, random_state=0
        )
        metadata = extract_metadata(model.fit(*iris), "sklearn")
        assert metadata["estimator"] == "DecisionTreeClassifier" and metadata["estimator__max_depth"] == 2
        assert metadata["n_estimators"] == 3 and metadata["model_type"] == "BaggingClassifier"
        assert "n_params" not in metadata  # trees have nodes, not parameters

    def test_regressor(self, sklearn_reg) -> None:
        metadata = read_manifest(sklearn_reg.artifact).metadata
        assert (
            metadata["estimator_type"] == "regressor"
            and metadata["max_depth"] == 4
            and metadata["n_features"] == 10
        )

    def test_mlp_architecture(self, iris) -> None:
        from sklearn.neural_network import MLPClassifier

        model = MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=30, random_state=0)
        with pytest.warns(UserWarning):  # not converged in 30 iterations, on purpose
            model.fit(*iris)
        metadata = extract_metadata(model, "sklearn")
        assert metadata["n_layers"] == 3 and metadata["activations"] == "relu,relu,softmax"
        assert metadata["n_params"] == sum(w.size for w in model.coefs_) + sum(
            b.size for b in model.intercepts_
        )
        assert metadata["hidden_layer_sizes"] == "(8, 4)" and metadata["loss"] == "log_loss"
        assert metadata["optimizer"] == "adam" and metadata["epochs"] == 30


class TestKeras:
    def test_counts_match_keras(self, keras_clf) -> None:
        model = keras_clf.model
        metadata = read_manifest(keras_clf.artifact).metadata
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        assert metadata["n_params"] == model.count_params()
        assert metadata["n_trainable_params"] == trainable
        non_trainable = model.count_params() - trainable
        assert metadata["n_non_trainable_params"] == non_trainable > 0  # batch-norm moving statistics
        assert (
            metadata["n_layers"] == 4
            and metadata["layer_Dense"] == 3
            and metadata["layer_BatchNormalization"] == 1
        )

    def test_architecture_and_training(self, keras_clf) -> None:
        metadata = read_manifest(keras_clf.artifact).metadata
        assert metadata["activations"] == "relu,relu,softmax"
        assert (metadata["act_relu"], metadata["act_softmax"]) == (2, 1)
        assert metadata["input_shape"] == "(None, 4)" and metadata["output_shape"] == "(None, 3)"
        assert metadata["layer_shapes"].startswith("Dense:(None, 16) | BatchNormalization:(None, 16)")
        assert metadata["loss"] == "sparse_categorical_crossentropy" and metadata["optimizer"] == "Adam"
        assert metadata["learning_rate"] == 0.01 and metadata["epochs"] == 4
        assert metadata["deep_learning"] is True and metadata["model_type"] == "Sequential"


class TestTorch:
    def test_counts_match_torch(self, torch_clf) -> None:
        model = torch_clf.model
        metadata = read_manifest(torch_clf.artifact).metadata
        assert metadata["n_params"] == sum(p.numel() for p in model.parameters())
        assert metadata["n_trainable_params"] == metadata["n_params"]
        assert metadata["n_layers"] == 6 and metadata["layer_Linear"] == 3 and metadata["layer_Dropout"] == 1
        assert metadata["activations"] == "relu,tanh" and metadata["act_tanh"] == 1

    def test_shapes_from_a_hooked_forward_pass(self, torch_clf) -> None:
        metadata = read_manifest(torch_clf.artifact).metadata
        assert metadata["input_shape"] == "(None, 13)" and metadata["output_shape"] == "(None, 3)"
        assert metadata["layer_shapes"].split(" | ")[:2] == ["Linear:(None, 32)", "ReLU:(None, 32)"]

    def test_frozen_parameters_and_recorded_training(self, wine) -> None:
        import torch

        class Tuned(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.backbone = torch.nn.Linear(13, 8).requires_grad_(False)
                self.head = torch.nn.Linear(8, 3)
                self.criterion = torch.nn.CrossEntropyLoss()
                self.optimizer = torch.optim.SGD(self.head.parameters(), lr=0.1)

            def forward(self, x):
                return self.head(torch.relu(self.backbone(x)))

        metadata = extract_metadata(Tuned(), "pytorch", wine[0][:4])
        assert (metadata["n_params"], metadata["n_trainable_params"]) == (13 * 8 + 8 + 8 * 3 + 3, 8 * 3 + 3)
        assert metadata["optimizer"] == "SGD" and metadata["learning_rate"] == 0.1
        assert metadata["loss"] == "CrossEntropyLoss"


class TestOnnx:
    def test_graph_facts(self, onnx_clf) -> None:
        proto = onnx_clf.model
        metadata = read_manifest(onnx_clf.artifact).metadata
        assert metadata["opset"] == 17 and metadata["ir_version"] == proto.ir_version
        assert metadata["n_nodes"] == len(proto.graph.node)
        assert metadata["n_params"] == sum(int(np.prod(init.dims)) for init in proto.graph.initializer)
        ops = [node.op_type for node in proto.graph.node]
        assert all(metadata[f"op_{op}"] == ops.count(op) for op in ops)
        assert metadata["producer"].startswith("skl2onnx")
        assert metadata["input_shape"] == "(None, 30)"
