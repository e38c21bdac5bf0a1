"""Every framework's artifact served over V1 and V2 with the playground's text class labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.serving.conftest import IRIS_CLASSES, PLAYGROUND, launch

ROWS = slice(0, 150, 11)


def native(framework: str, model, values: np.ndarray) -> np.ndarray:
    """Class probabilities in IRIS_CLASSES order, from the live model."""
    if framework == "pytorch":
        import torch

        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(values)), dim=1).numpy()
    if framework == "keras":
        return np.asarray(model.predict(values, verbose=0))
    return model.predict_proba(values)  # the tree behind the ONNX graph


@pytest.mark.parametrize("framework", [
    "onnx",
    pytest.param("pytorch", marks=pytest.mark.slow),  # torch import and export: several seconds
    pytest.param("keras", marks=pytest.mark.slow),  # TensorFlow import: several seconds
])
@pytest.mark.parametrize("runtime", ["native", "auto"])
def test_v1_and_v2_answer_the_models_own_predictions(framework, runtime, request, iris, logs):
    model, artifact = request.getfixturevalue({"onnx": "onnx_clf", "pytorch": "torch_clf", "keras": "keras_clf"}[framework])
    values = iris[0].iloc[ROWS].to_numpy(np.float32)
    proba = native(framework, model, values)
    order = [IRIS_CLASSES.index(label) for label in PLAYGROUND]
    labels = list(np.asarray(IRIS_CLASSES)[proba.argmax(axis=1)])
    server = launch(artifact, logs, "--runtime", runtime, labels=PLAYGROUND)
    try:
        status, v1 = server.v1(values.tolist())
        v2_status, v2 = server.v2([{"name": "input", "shape": list(values.shape), "datatype": "FP32",
                                    "data": values.ravel().tolist()}])
    finally:
        server.stop()
    assert status == 200, v1
    assert v1["predictions"] == labels and v1["classes"] == PLAYGROUND
    np.testing.assert_allclose(v1["probabilities"], proba[:, order], atol=1e-5)
    assert v2_status == 200, v2
    outputs = {output["name"]: output for output in v2["outputs"]}
    assert outputs["label"]["data"] == labels and outputs["label"]["datatype"] == "BYTES"
    assert json.loads(outputs["probabilities"]["parameters"]["classes"]) == PLAYGROUND
    np.testing.assert_allclose(np.reshape(outputs["probabilities"]["data"], (-1, 3)), proba[:, order], atol=1e-5)
