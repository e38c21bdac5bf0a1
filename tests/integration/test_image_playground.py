"""An image playground (scikit-learn's 8x8 digits) created through the SDK, scored for every framework."""

from __future__ import annotations

import numpy as np
import pytest

from podium.client import ModelPlayground
from tests.digits import digits_split, keras_conv, onnx_flat, sklearn_pipeline, torch_conv

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)


def test_image_playground_scores_every_framework_like_its_own_predictions(cluster) -> None:
    train_x, test_x, train_y, test_y = digits_split()
    playground = ModelPlayground.create(
        "digits", test_x, test_y, task="classification", primary_metric="accuracy", inputType="image",
        evaluation={"timeoutSeconds": 240, "resources": {"cpu": "1", "memory": "8Gi"}},
    )
    ready = playground.wait_ready(timeout=120)
    assert ready["spec"]["holdout"]["features"].endswith(".npy")
    assert ready["spec"]["classLabels"] == [str(digit) for digit in range(10)]

    built = {"sk": sklearn_pipeline, "ks": keras_conv, "pt": torch_conv, "ox": onnx_flat}
    native = {}
    for name, build in built.items():
        model, example, predict = build(train_x, train_y)
        native[name] = predict(test_x)
        playground.submit_model(model, name=name, example_data=example)

    finished = {s["metadata"]["name"]: s["status"] for s in playground.wait_for(*built, timeout=600)}
    for name, status in finished.items():
        assert status["phase"] == "Evaluated", f"{name}: {status.get('message')}"
        own = float(np.mean(np.asarray(native[name]).astype(int) == test_y))
        assert status["score"] == pytest.approx(own), name  # what the model itself predicts, row for row
        assert status["score"] > 0.85, name
    assert {status["framework"] for status in finished.values()} == {"sklearn", "keras", "pytorch", "onnx"}
