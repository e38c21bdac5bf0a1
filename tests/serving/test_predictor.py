"""The predictor as KServe serves it: real ``python -m podium.serving`` processes, real HTTP on loopback."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import IRIS_CLASSES, PLAYGROUND, add_ratios, launch

ROWS = slice(0, 150, 7)  # rows of every class


@pytest.fixture(scope="module")
def sklearn_server(sklearn_clf, logs):
    server = launch(sklearn_clf[1], logs, "--runtime", "native", labels=PLAYGROUND)
    yield server
    server.stop()


def expected(model, features):
    """Labels, and probabilities with the columns in the playground's order."""
    proba = model.predict_proba(features)
    order = [list(model.classes_).index(label) for label in PLAYGROUND]
    return list(model.predict(features)), proba[:, order]


def test_v1_rows_answer_labels_and_probabilities_in_the_playgrounds_label_order(sklearn_server, sklearn_clf, iris):
    model, features = sklearn_clf[0], iris[0].iloc[ROWS]
    status, body = sklearn_server.v1(features.to_numpy().tolist())
    assert status == 200, body
    labels, proba = expected(model, features)
    assert body["predictions"] == labels
    assert body["classes"] == PLAYGROUND
    np.testing.assert_allclose(body["probabilities"], proba, rtol=1e-9)


def test_v1_named_columns_in_any_order(sklearn_server, sklearn_clf, iris):
    features = iris[0].iloc[ROWS]
    rows = [dict(reversed(list(row.items()))) for row in features.to_dict("records")]
    status, body = sklearn_server.v1(rows)
    assert status == 200, body
    assert body["predictions"] == expected(sklearn_clf[0], features)[0]


def test_v2_one_tensor_and_one_tensor_per_column(sklearn_server, sklearn_clf, iris):
    features = iris[0].iloc[ROWS]
    labels, proba = expected(sklearn_clf[0], features)
    values = features.to_numpy()
    tensor = [{"name": "x", "shape": list(values.shape), "datatype": "FP64", "data": values.ravel().tolist()}]
    columns = [{"name": name, "shape": [len(values)], "datatype": "FP32", "data": features[name].tolist()}
               for name in features.columns]
    for inputs in (tensor, columns):
        status, body = sklearn_server.v2(inputs)
        assert status == 200, body
        outputs = {output["name"]: output for output in body["outputs"]}
        assert outputs["label"] == {"name": "label", "shape": [len(values)], "datatype": "BYTES",
                                    "data": labels, "parameters": None}
        assert outputs["probabilities"]["datatype"] == "FP64"
        assert outputs["probabilities"]["shape"] == [len(values), 3]
        assert json.loads(outputs["probabilities"]["parameters"]["classes"]) == PLAYGROUND
        np.testing.assert_allclose(np.reshape(outputs["probabilities"]["data"], (-1, 3)), proba, rtol=1e-5)


@pytest.mark.parametrize(("request_body", "field"), [
    ({"instances": [[1.0, 2.0, 3.0]]}, "features"),  # three features, the model takes four
    ({"instances": [[1.0, 2.0, 3.0, 4.0], [1.0]]}, "instances"),  # ragged rows
    ({"rows": [[1.0, 2.0, 3.0, 4.0]]}, "instances"),
    ({"instances": [{"sepal length (cm)": 1.0}]}, "instances"),  # named, columns missing
    ({"instances": [5.1, 3.5, 1.4, 0.2]}, "instances"),  # a bare row, not a list of rows
])
def test_bad_v1_input_is_a_400_naming_the_field_and_the_fix(sklearn_server, request_body, field):
    status, body = sklearn_server.request("POST", "/v1/models/iris:predict", request_body)
    assert status == 400, body
    assert body["error"].startswith(f"{field}: ") and "Fix: " in body["error"] and "\n" not in body["error"]


@pytest.mark.parametrize(("inputs", "field"), [
    ([{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}], "inputs[0].datatype"),
    ([{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "inputs[0].data"),
    ([{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}], "inputs"),  # one column of four
    ([{"name": "x", "datatype": "FP32", "data": [1, 2, 3, 4]}], "inputs[0].shape"),  # FastAPI's 422, made a 400
])
def test_bad_v2_input_is_a_400_naming_the_field(sklearn_server, inputs, field):
    status, body = sklearn_server.v2(inputs)
    assert status == 400, body
    assert body["error"].startswith(f"{field}: ") and "Fix: " in body["error"]


def test_a_non_json_content_type_is_still_read_as_json(sklearn_server, iris):
    row = iris[0].iloc[:1].to_numpy().tolist()
    status, body = sklearn_server.request("POST", "/v1/models/iris:predict", {"instances": row},
                                          content_type="application/x-www-form-urlencoded")
    assert status == 200 and body["predictions"] == ["setosa"]


def test_liveness_and_readiness_endpoints(sklearn_server):
    assert sklearn_server.get("/") == (200, {"status": "alive"})
    assert sklearn_server.get("/v1/models/iris") == (200, {"name": "iris", "ready": True})
    assert sklearn_server.get("/v2/health/ready")[0] == 200
    assert sklearn_server.get("/v2/models/iris/ready")[0] == 200


def test_readiness_is_503_until_the_artifact_is_loaded(gated, logs, iris):
    artifact, gate = gated
    server = launch(artifact, logs, labels=IRIS_CLASSES, wait=False)
    try:
        server.wait(503)  # the server answers while the model loads ...
        assert server.get("/") == (200, {"status": "alive"})
        assert server.get("/v2/models/iris/ready")[0] == 503
        assert server.get("/v2/health/ready")[0] == 503
        assert server.v1(iris[0].iloc[:1].to_numpy().tolist())[0] == 503
        gate.touch()
        server.wait(200)  # ... and is ready once it has
        assert server.get("/v2/health/ready")[0] == 200
        assert server.v1(iris[0].iloc[:1].to_numpy().tolist())[1]["predictions"] == ["setosa"]
    finally:
        server.stop()


def metric_samples(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = server.get("/metrics")
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_a_model_that_raises_is_a_500_counted_as_error_with_invalid_and_ok_apart(crashing, sklearn_clf, logs):
    server = launch(crashing, logs, labels=IRIS_CLASSES, name="crash")
    try:
        status, body = server.v1([[5.1, 3.5, 1.4, 0.2]])
        assert status == 500
        assert "never engineered" in body["error"] and "\n" not in body["error"]
        assert server.v1([[5.1, 3.5]])[0] == 400
        assert server.request("POST", "/v1/models/crash:predict", b'{"instances": [[1,')[0] == 400  # KServe's own
        assert server.v2([{"name": "x", "datatype": "FP32", "data": [1]}])[0] == 400  # FastAPI's validation
        samples = metric_samples(server)
    finally:
        server.stop()
    labels = (("model_name", "crash"), ("submission", "sub-a"), ("version", "7"))
    count = {outcome: samples["podium_predictor_requests_total", tuple(sorted((*labels, ("outcome", outcome))))]
             for outcome in ("ok", "error", "invalid")}
    assert count == {"ok": 0, "error": 1, "invalid": 3}
    assert samples["podium_predictor_request_seconds_count", labels] == 2  # those that reached the model


def test_metrics_have_the_contracts_series_labels_and_buckets(sklearn_server):
    before = metric_samples(sklearn_server)
    labels = (("model_name", "iris"), ("submission", "sub-a"), ("version", "7"))
    ok = ("podium_predictor_requests_total", tuple(sorted((*labels, ("outcome", "ok")))))
    assert sklearn_server.v1([[5.1, 3.5, 1.4, 0.2]])[0] == 200
    after = metric_samples(sklearn_server)
    assert after[ok] == before.get(ok, 0) + 1
    buckets = sorted(float(dict(key[1])["le"]) for key in after if key[0] == "podium_predictor_request_seconds_bucket")
    assert buckets == [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")]
    for outcome in ("error", "invalid"):  # present from the start, at 0 until something fails
        assert ("podium_predictor_requests_total", tuple(sorted((*labels, ("outcome", outcome))))) in after


def test_a_preprocessor_written_for_named_columns_gets_a_dataframe(preprocessed, logs, iris):
    model, artifact = preprocessed
    features = iris[0].iloc[ROWS]
    server = launch(artifact, logs, labels=IRIS_CLASSES)
    try:
        for instances in (features.to_numpy().tolist(), features.to_dict("records")):
            status, body = server.v1(instances)
            assert status == 200, body
            assert body["predictions"] == list(model.predict(add_ratios(features).to_numpy()))
            np.testing.assert_allclose(body["probabilities"], model.predict_proba(add_ratios(features).to_numpy()),
                                       atol=1e-5)  # auto: via the ONNX export, in float32
    finally:
        server.stop()


def test_onnx_runtime_answers_as_the_native_model_does(sklearn_clf, sklearn_server, logs, iris):
    features = iris[0].to_numpy().tolist()
    server = launch(sklearn_clf[1], logs, "--runtime", "onnx", labels=PLAYGROUND)
    try:
        onnx_status, onnx = server.v1(features)
    finally:
        server.stop()
    native_status, native = sklearn_server.v1(features)
    assert onnx_status == native_status == 200
    assert onnx["predictions"] == native["predictions"] and onnx["classes"] == native["classes"]
    np.testing.assert_allclose(onnx["probabilities"], native["probabilities"], atol=1e-5)


def test_auto_runtime_picks_the_checked_onnx_export(sklearn_clf, preprocessed):
    from podium.serving.model import PodiumModel, Settings

    for artifact in (sklearn_clf[1], preprocessed[1]):
        model = PodiumModel("m", Settings(model_dir=artifact, class_labels=IRIS_CLASSES))
        assert model.load() and model.ready
        assert model.runtime == "onnx"
        model = PodiumModel("m", Settings(model_dir=artifact, runtime="native"))
        assert model.load() and model.runtime == "native"


def test_an_archive_in_the_model_dir_is_served(sklearn_clf, tmp_path, logs, iris):
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(sklearn_clf[1], arcname="artifact")
    (tmp_path / "serve").mkdir()
    shutil.move(tmp_path / "model.tar.gz", tmp_path / "serve" / "model.tar.gz")
    server = launch(tmp_path / "serve", logs, labels=IRIS_CLASSES)
    try:
        status, body = server.v1(iris[0].iloc[:1].to_numpy().tolist())
    finally:
        server.stop()
    assert status == 200 and body["predictions"] == ["setosa"] and body["classes"] == IRIS_CLASSES


def test_a_model_that_cannot_load_ends_the_process_with_the_reason(sklearn_clf, tmp_path: Path, logs):
    serve = tmp_path / "serve"
    serve.mkdir()
    for name in ("a.tar.gz", "b.tar.gz"):
        (serve / name).write_bytes(b"")
    log = tmp_path / "termination-log"
    server = launch(serve, logs, wait=False, env={"PODIUM_TERMINATION_LOG": str(log)})
    assert server.process.wait(timeout=60) == 1
    message = log.read_text()
    assert message.startswith("model iris failed to load: storageUri: ") and "2 archives" in message
    assert message in server.log.read_text()


def test_labels_the_playground_lacks_refuse_to_load(sklearn_clf):
    from podium.errors import PodiumError
    from podium.serving.model import PodiumModel, Settings

    model = PodiumModel("m", Settings(model_dir=sklearn_clf[1], class_labels=["cat", "dog"]))
    with pytest.raises(PodiumError, match="class_labels: the model predicts class"):
        model.load()
    assert not model.ready


def test_a_regressor_answers_values_without_probabilities(tmp_path):
    from kserve import InferInput, InferRequest
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from podium.serving.model import PodiumModel, Settings
    from tests.serving.conftest import save

    features, target = load_diabetes(return_X_y=True)
    model = Ridge().fit(features, target)
    artifact = save(model, tmp_path / "ridge", example_data=features)
    served = PodiumModel("ridge", Settings(model_dir=artifact, task="regression", class_labels=["ignored"]))
    served.load()
    rows = features[:5]
    answer = served.predict({"instances": rows.tolist()})
    assert set(answer) == {"predictions"}
    np.testing.assert_allclose(answer["predictions"], model.predict(rows), rtol=1e-4)
    v2 = served.predict(InferRequest("ridge", [InferInput("x", list(rows.shape), "FP64", rows.ravel().tolist())]))
    (output,) = v2.outputs
    assert output.name == "label" and output.datatype == "FP64" and output.shape == [5]
    np.testing.assert_allclose(output.data, model.predict(rows), rtol=1e-4)


def test_every_answer_names_the_submission_that_gave_it(sklearn_server, iris):
    import urllib.request

    body = json.dumps({"instances": iris[0].iloc[ROWS].to_numpy().tolist()}).encode()
    request = urllib.request.Request(f"{sklearn_server.url}/v1/models/iris:predict", data=body, method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["x-podium-submission"] == "sub-a"
