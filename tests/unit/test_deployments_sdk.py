"""The SDK's serving calls (podium.deployments): manifests, the status view, payloads, and the calls
against a real API emulator (the operator's part, the status, written here as the operator would)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium import deployments
from podium.api import GROUP, VERSION
from podium.api.deployment import ModelDeploymentStatus, RolloutPolicy
from podium.api.validation import manifest_problems
from podium.deployments import DeploymentError
from podium.errors import InvalidConfig
from podium.serving import codec
from podium_operator.local.apiserver.objects import merge_patch as merged  # the emulator's RFC 7386 merge
from tests.local.conftest import make_api_client, podium_api_server  # noqa: F401  (fixture)

NOW = "2026-12-01T12:00:00Z"


# --- manifests ---------------------------------------------------------------------------------------
def test_the_manifest_for_a_version_is_a_valid_model_deployment():
    manifest = deployments.manifest("iris", "iris", version=3)
    assert manifest_problems(manifest) == []
    assert manifest["spec"] == {"playground": "iris", "version": 3}


def test_rollout_and_runtime_are_checked_and_sent_camel_case():
    manifest = deployments.manifest("iris", "iris-prod", submission="logreg",
                                    rollout=RolloutPolicy(steps=[5, 25], step_interval_seconds=30),
                                    runtime={"deploymentMode": "Knative", "protocol": "v2"})
    assert manifest_problems(manifest) == []
    assert manifest["spec"]["rollout"]["steps"] == [5, 25] and manifest["spec"]["rollout"]["stepIntervalSeconds"] == 30
    assert manifest["spec"]["runtime"]["deploymentMode"] == "Knative"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({}, "version"), ({"version": 1, "submission": "a"}, "version"),
    ({"version": 1, "rollout": {"steps": [10, 10]}}, "spec.rollout"),
    ({"version": 1, "runtime": {"replica": 2}}, "spec.runtime"),
])
def test_a_bad_target_or_policy_names_the_field(kwargs, field):
    with pytest.raises(InvalidConfig) as raised:
        deployments.manifest("iris", "iris", **kwargs)
    assert raised.value.field == field and "\n" not in str(raised.value)


def test_an_update_switches_target_and_stays_valid():
    manifest = deployments.manifest("iris", "iris", version=3)
    swapped = merged(manifest, deployments.update_patch(submission="forest"))
    assert swapped["spec"] == {"playground": "iris", "submission": "forest"}
    assert manifest_problems(swapped) == []
    back = merged(swapped, deployments.update_patch(4, rollout={"strategy": "replace"}))
    assert back["spec"]["version"] == 4 and "submission" not in back["spec"] and manifest_problems(back) == []


def test_shadow_sets_and_clears_the_candidate():
    manifest = deployments.manifest("iris", "iris", version=3)
    shadowed = merged(manifest, deployments.shadow_patch(4))
    assert shadowed["spec"]["shadow"] == {"version": 4} and manifest_problems(shadowed) == []
    assert "shadow" not in merged(shadowed, deployments.shadow_patch())["spec"]
    by_name = merged(manifest, deployments.shadow_patch("forest"))  # a string is a submission's name
    assert by_name["spec"]["shadow"] == {"submission": "forest"} and manifest_problems(by_name) == []
    assert merged(manifest, deployments.update_patch("forest"))["spec"]["submission"] == "forest"
    with pytest.raises(InvalidConfig):
        deployments.update_patch("forest", "tree")


# --- the status view -----------------------------------------------------------------------------------
def deployment(spec_target: dict[str, Any], generation: int = 2, **status: Any) -> dict[str, Any]:
    wire = ModelDeploymentStatus.model_validate(status).to_wire()
    return {"metadata": {"name": "iris", "generation": generation},
            "spec": {"playground": "iris", **spec_target}, "status": {"observedGeneration": generation, **wire}}


STABLE = {"submission": "logreg", "version": 3}
CANARY = {"submission": "forest", "version": 4}


def canary_at(percent: int, verdict: str = "Passed") -> dict[str, Any]:
    return deployment({"version": 4}, phase="Progressing", stable=STABLE, canary=CANARY, canaryPercent=percent,
                      url="http://127.0.0.1:9", inferenceService="iris",
                      traffic=[{**STABLE, "role": "stable", "percent": 100 - percent},
                               {**CANARY, "role": "canary", "percent": percent}],
                      analysis={"time": NOW, "source": "direct", "stage": "canary", "percent": percent,
                                "values": {"errorRate": 0.0}, "verdict": verdict, "reasons": []})


def test_the_view_reads_stable_canary_traffic_and_analysis():
    shown = deployments.view(canary_at(10))
    assert (shown.phase, shown.target, shown.url, shown.canary_percent) == (
        "Progressing", "version 4", "http://127.0.0.1:9", 10)
    assert shown.stable == STABLE and shown.canary == CANARY
    assert [(t["role"], t["percent"]) for t in shown.traffic] == [("stable", 90), ("canary", 10)]
    assert shown.analysis is not None and shown.analysis["verdict"] == "Passed"
    text = deployments.progress_text(shown)
    assert "Progressing" in text and "canary forest at 10%" in text and "analysis Passed" in text


def test_a_fresh_deployment_without_status_is_pending():
    shown = deployments.view({"metadata": {"name": "iris", "generation": 1}, "spec": {"playground": "iris",
                                                                                      "submission": "a"}})
    assert (shown.phase, shown.url, shown.up_to_date, shown.target) == ("Pending", None, False, "submission a")


def test_the_rollout_is_done_only_when_the_target_serves_everything():
    assert deployments.rollout_outcome(canary_at(50)) is None
    ready = deployment({"version": 4}, phase="Ready", stable=CANARY, url="http://127.0.0.1:9")
    assert deployments.rollout_outcome(ready) == "done"
    stale = deployment({"version": 4}, phase="Ready", stable=STABLE)  # the old model, still Ready
    assert deployments.rollout_outcome(stale) is None
    behind = {**ready, "metadata": {"name": "iris", "generation": 3}}  # the operator has not seen the spec yet
    assert deployments.rollout_outcome(behind) is None


def test_a_rolled_back_target_raises_with_the_reason_from_status():
    rolled_back = deployment({"version": 4}, phase="Ready", stable=STABLE,
                             rejected={**CANARY, "reason": "AnalysisFailed", "message": "error rate 0.2 > 0.01"})
    with pytest.raises(DeploymentError, match=r"version 4 was rolled back \(AnalysisFailed: error rate 0.2 > 0.01\)"):
        deployments.rollout_outcome(rolled_back)
    failed = deployment({"version": 4}, phase="Failed", message="ModelLoadFailed: no manifest.json")
    with pytest.raises(DeploymentError, match="ModelLoadFailed: no manifest.json"):
        deployments.rollout_outcome(failed)


# --- payloads: what the SDK sends is what the predictor reads, and back ---------------------------------
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


def test_v1_rows_arrays_and_named_frames_reach_the_predictor_as_sent():
    for data in (ROWS, np.asarray(ROWS)):
        body = deployments.request_body(data, "v1")
        assert np.array_equal(codec.v1_features(body, codec.Layout()), np.asarray(ROWS))
    frame = pd.DataFrame(ROWS, columns=["a", "b", "c", "d"])
    body = deployments.request_body(frame, "v1")
    assert body["instances"][0] == {"a": 5.1, "b": 3.5, "c": 1.4, "d": 0.2}
    layout = codec.Layout(columns=("a", "b", "c", "d"), dtypes=("float64",) * 4, frame=True)
    pd.testing.assert_frame_equal(codec.v1_features(body, layout), frame)


def tensors(body: dict[str, Any]) -> list[SimpleNamespace]:
    return [SimpleNamespace(**tensor) for tensor in body["inputs"]]


def test_v2_sends_one_tensor_of_rows_or_one_tensor_per_named_column():
    body = deployments.request_body(np.asarray(ROWS, dtype=np.float32), "v2")
    (tensor,) = body["inputs"]
    assert (tensor["shape"], tensor["datatype"]) == ([2, 4], "FP32")
    assert np.allclose(codec.v2_features(tensors(body), codec.Layout()), ROWS)
    frame = pd.DataFrame({"x": [1, 2], "colour": ["red", "blue"]})
    body = deployments.request_body(frame, "v2")
    assert [(t["name"], t["datatype"], t["shape"]) for t in body["inputs"]] == [
        ("x", "INT64", [2]), ("colour", "BYTES", [2])]
    layout = codec.Layout(columns=("x", "colour"), dtypes=("int64", "object"), frame=True)
    assert codec.v2_features(tensors(body), layout)["colour"].tolist() == ["red", "blue"]


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_answers_decode_to_labels_and_class_label_columns(protocol):
    labels, proba, classes = ["setosa", "virginica"], [[0.9, 0.1], [0.2, 0.8]], ["setosa", "virginica"]
    answer = (codec.v1_response(labels, proba, classes) if protocol == "v1"
              else {"outputs": codec.v2_outputs(labels, proba, classes)})
    got, frame = deployments.decode(json.loads(json.dumps(answer)), protocol)
    assert got == labels and frame is not None and list(frame.columns) == classes
    assert np.allclose(frame.to_numpy(), proba)
    plain = codec.v1_response([1.5], None, None) if protocol == "v1" else {"outputs": codec.v2_outputs([1.5], None, None)}
    assert deployments.decode(plain, protocol) == ([1.5], None)


@given(st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=3, max_size=3),
                min_size=1, max_size=20), st.sampled_from(["v1", "v2"]))
def test_numeric_rows_round_trip_exactly(rows, protocol):
    array = np.asarray(rows, dtype=np.float64)
    body = json.loads(json.dumps(deployments.request_body(array, protocol)))
    read = (codec.v1_features(body, codec.Layout()) if protocol == "v1"
            else codec.v2_features(tensors(body), codec.Layout()))
    assert np.array_equal(np.asarray(read, dtype=np.float64), array)


def test_data_that_is_not_rows_is_refused_naming_the_argument():
    with pytest.raises(InvalidConfig) as raised:
        deployments.request_body(np.zeros((2, 2, 2)), "v1")
    assert raised.value.field == "data"


# --- HTTP: the server's refusals in one line -------------------------------------------------------------
class Answering(BaseHTTPRequestHandler):
    replies: dict[str, tuple[int, bytes]] = {}
    seen: list[tuple[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
        code, body = self.replies.get(self.path, (404, b'{"error": "Model with name nope does not exist."}'))
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("code", "body", "expected"), [
    (400, b'{"error": "instances: the request has\\nno rows"}', "answered 400 Bad Request: instances: the request has no rows"),
    (500, b'{"error": "boom"}', "answered 500 Internal Server Error: boom"),
    (503, b"not json at all", "answered 503 Service Unavailable: not json at all"),
])
def test_a_refusal_is_one_line_with_the_servers_message(http_server, code, body, expected):
    Answering.replies = {"/v1/models/iris:predict": (code, body)}
    with pytest.raises(DeploymentError) as raised:
        deployments.post(f"{http_server}/v1/models/iris:predict", {"instances": ROWS})
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_an_unreachable_predictor_says_where_it_looked():
    with pytest.raises(DeploymentError, match=r"cannot reach the predictor at http://127.0.0.1:9/"):
        deployments.post("http://127.0.0.1:9/v1/models/iris:predict", {"instances": ROWS}, timeout=5)


# --- against the API emulator --------------------------------------------------------------------------
@pytest.fixture
def playground(podium_api_server, tmp_path: Path) -> Any:  # noqa: F811 (the fixture imported above)
    from podium.client import ModelPlayground

    kubeconfig = podium_api_server.write_kubeconfig(tmp_path / "kubeconfig")
    pg = ModelPlayground("iris", kubeconfig=str(kubeconfig), progress=False)
    pg.admin = make_api_client(podium_api_server)  # type: ignore[attr-defined]  (writes status, as the operator)
    return pg


def write_status(pg: Any, name: str, status: dict[str, Any]) -> None:
    from kubernetes.client import CustomObjectsApi

    api = CustomObjectsApi(pg.admin)
    obj = api.get_namespaced_custom_object(GROUP, VERSION, "default", "modeldeployments", name)
    wire = ModelDeploymentStatus.model_validate(status).to_wire()
    cleared = dict.fromkeys(obj.get("status") or {})  # the whole status is replaced, as the operator writes it
    api.patch_namespaced_custom_object_status(GROUP, VERSION, "default", "modeldeployments", name, {
        "status": {**cleared, **wire, "observedGeneration": obj["metadata"]["generation"]}})


def test_deploy_creates_then_updates_and_shadow_sets_and_clears(playground):
    shown = playground.deploy_model(3, wait=False, rollout={"steps": [20]})
    assert (shown.name, shown.target, shown.phase) == ("iris", "version 3", "Pending")
    again = playground.deploy_model(submission="forest", wait=False)  # exists: the target changes
    obj = deployments.read(playground)
    assert again.target == "submission forest" and "version" not in obj["spec"]
    assert obj["spec"]["rollout"]["steps"] == [20]  # what was not given is kept
    assert deployments.read(playground)["spec"].get("shadow") is None
    playground.shadow(4)
    assert deployments.read(playground)["spec"]["shadow"] == {"version": 4}
    playground.shadow(None)
    assert "shadow" not in deployments.read(playground)["spec"]


def test_calls_on_a_missing_deployment_say_how_to_make_one(playground):
    for call in (playground.get_deployment, lambda: playground.update_runtime_model(2, wait=False),
                 lambda: playground.predict(ROWS), lambda: playground.shadow(2)):
        with pytest.raises(DeploymentError, match="no ModelDeployment iris in namespace default.*deploy_model"):
            call()


def operator_writes(pg: Any, steps: list[dict[str, Any]], seen: threading.Semaphore | None = None) -> threading.Thread:
    """Write each status in turn, each once the waiter has seen the one before (``seen``, released per change)."""
    def run() -> None:
        for status in steps:
            if seen is not None:
                assert seen.acquire(timeout=30), "the waiter never saw the previous status"
            write_status(pg, "iris", status)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_update_waits_through_the_canary_until_promoted(playground):
    playground.deploy_model(3, wait=False)
    write_status(playground, "iris", {"phase": "Ready", "stable": STABLE, "url": "http://127.0.0.1:9"})
    deployments.update(playground, 4, wait=False)
    changes: list[str] = []
    seen = threading.Semaphore(0)

    def changed(shown: deployments.DeploymentView) -> None:
        changes.append(deployments.progress_text(shown))
        seen.release()

    writer = operator_writes(playground, [canary_at(p)["status"] for p in (10, 50)] + [
        {"phase": "Ready", "stable": CANARY, "url": "http://127.0.0.1:9"}], seen)
    shown = deployments.wait_rollout(playground, "iris", 30, on_change=changed)
    writer.join()
    assert shown.phase == "Ready" and shown.stable == CANARY
    assert changes[1:] == ["Progressing, canary forest at 10%, analysis Passed",
                           "Progressing, canary forest at 50%, analysis Passed", "Ready"], changes


def test_update_raises_when_the_candidate_is_rolled_back(playground):
    playground.deploy_model(3, wait=False)
    writer = operator_writes(playground, [canary_at(10, "Failed")["status"], {
        "phase": "Ready", "stable": STABLE, "url": "http://127.0.0.1:9",
        "rejected": {**CANARY, "reason": "AnalysisFailed", "message": "p99 latency ratio 3.1 > 1.5"}}])
    with pytest.raises(DeploymentError, match=r"rolled back \(AnalysisFailed: p99 latency ratio 3.1 > 1.5\)"):
        playground.update_runtime_model(4, timeout=30)
    writer.join()


def test_predict_posts_to_the_status_url_with_the_deployments_protocol(playground, http_server):
    playground.deploy_model(3, wait=False, runtime={"protocol": "v2"})
    with pytest.raises(DeploymentError, match="not serving yet"):
        playground.predict(ROWS)
    write_status(playground, "iris", {"phase": "Ready", "stable": STABLE, "url": http_server,
                                      "inferenceService": "iris"})
    answer = json.dumps({"outputs": codec.v2_outputs(["a", "b"], [[0.7, 0.3], [0.1, 0.9]], ["a", "b"])}).encode()
    Answering.replies, Answering.seen = {"/v2/models/iris/infer": (200, answer)}, []
    labels, frame = playground.predict(np.asarray(ROWS), probabilities=True)
    assert labels == ["a", "b"] and list(frame.columns) == ["a", "b"]
    assert Answering.seen[0][1]["inputs"][0]["shape"] == [2, 4]
    Answering.replies = {"/v1/models/iris:predict": (200, json.dumps(codec.v1_response(["a"], None, None)).encode())}
    assert playground.predict([ROWS[0]], protocol="v1") == ["a"]
    with pytest.raises(DeploymentError, match="gives no probabilities"):
        playground.predict([ROWS[0]], protocol="v1", probabilities=True)
