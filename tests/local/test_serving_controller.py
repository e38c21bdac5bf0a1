"""Local serving controller: real emulator over HTTP, real object store, real KServe model servers, real router.

The predictor is ``serving_echo.py`` (a real ``kserve.Model`` that predicts the label its artifact names),
run by the same supervision code as ``python -m podium.serving``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsonschema
import kubernetes.client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.objectstore import ObjectStore
from podium_operator.local.serving.controller import ServingController
from podium_operator.local.serving.storage import S3Access
from podium_operator.local.serving.vendor_crds import kserve_crds
from tests.local.conftest import make_api_client

ECHO = (sys.executable, str(Path(__file__).with_name("serving_echo.py")))
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
STATUS_SCHEMA = kserve_crds()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
pytestmark = pytest.mark.slow


@dataclass
class Serving:
    api: ApiServer
    store: ObjectStore
    controller: ServingController
    objects: kubernetes.client.CustomObjectsApi

    def artifact(self, key: str, **files: str) -> str:
        client = self.store.minio_client()
        for name, text in files.items():
            data = text.encode()
            client.put_object(self.store.bucket, f"{key}/{name}.txt", io.BytesIO(data), len(data))
        return f"s3://{self.store.bucket}/{key}"

    def create(self, body: dict[str, Any]) -> None:
        self.objects.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.objects.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name, patch)

    def get(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.objects.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                                                              name))

    def wait(self, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get(name)
            if check(obj.get("status") or {}):
                jsonschema.validate(obj["status"], STATUS_SCHEMA)
                return obj
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: status never matched: {json.dumps(obj.get('status'), indent=1)}")
            time.sleep(0.1)


def model(uri: str, submission: str = "s1") -> dict[str, Any]:
    return {"name": "", "modelFormat": {"name": "podium"}, "runtime": "podium", "protocolVersion": "v1",
            "storageUri": uri, "env": [{"name": "PODIUM_SUBMISSION", "value": submission}]}


def isvc(name: str, mode: str, predictor: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "InferenceService",
            "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": mode}},
            "spec": {"predictor": predictor, **spec}}


def condition(status: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in status.get("conditions") or [] if c["type"] == kind), None)


def submission_of(url: str, name: str) -> str:
    """The ``x-podium-submission`` header of an answer."""
    body = json.dumps({"instances": [[1.0, 2.0]]}).encode()
    request = urllib.request.Request(f"{url}/v1/models/{name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers.get("x-podium-submission", ""))


def predict(url: str, name: str, rows: int = 1) -> tuple[int, list[Any]]:
    body = json.dumps({"instances": [[1.0, 2.0]] * rows}).encode()
    request = urllib.request.Request(f"{url}/v1/models/{name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as e:
        return e.code, []
    except OSError:
        return 599, []


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    with ApiServer() as api, ObjectStore(bucket="serving") as store:
        api.call(lambda: [api.emulator.apply_crd(crd) for crd in kserve_crds()])
        s3 = S3Access(store.endpoint, store.access_key, store.secret_key, store.region)
        with ServingController(api.url, tmp_path_factory.mktemp("serving"), s3, command=ECHO) as controller, \
                make_api_client(api) as client:
            yield Serving(api, store, controller, kubernetes.client.CustomObjectsApi(client))


def test_standard_canary_split_and_rename_promotion(serving: Serving) -> None:
    v1, v2 = serving.artifact("std/v1", label="a"), serving.artifact("std/v2", label="b")
    serving.create(isvc("std", "Standard", {"name": "v1", "minReplicas": 1, "model": model(v1)}))
    status = serving.wait("std", lambda s: condition(s, "Ready") == "True")["status"]
    url = status["url"]
    assert url == status["address"]["url"] and url.startswith("http://127.0.0.1:")
    assert status["deploymentMode"] == "Standard" and status["observedGeneration"] == 1
    assert [predict(url, "std") for _ in range(5)] == [(200, ["a"])] * 5
    serving.patch("std", {"spec": {"canary": [{"trafficPercent": 10,
                                               "predictor": {"name": "v2", "model": model(v2, "s2")}}]}})
    serving.wait("std", lambda s: _first_canary_is({"name": "v2", "ready": True, "trafficPercent": 10}, s)
                 and condition(s, "CanaryPredictorReady") == "True")
    answers = [predict(url, "std")[1][0] for _ in range(100)]
    assert answers.count("b") == 10 and answers.count("a") == 90  # exactly: smooth weighted round robin
    canary_url = _predictor_url(serving, "std", "v2")
    serving.patch("std", {"spec": {"predictor": {"name": "v2", "model": model(v2, "s2")}, "canary": None}})
    serving.wait("std", lambda s: "canaryStatuses" not in s and condition(s, "Ready") == "True")
    assert [predict(url, "std") for _ in range(5)] == [(200, ["b"])] * 5
    assert submission_of(url, "std") == "s2"  # every answer says which submission gave it
    assert _predictor_url(serving, "std", "v2") == canary_url  # the same process: promotion restarts nothing
    assert serving.controller.cache.downloads == 2  # each artifact once


def test_knative_canary_promotion_and_rollback(serving: Serving) -> None:
    v1, v2 = serving.artifact("kn/v1", label="a"), serving.artifact("kn/v2", label="b")
    serving.create(isvc("kn", "Knative", {"model": model(v1)}))
    status = serving.wait("kn", lambda s: condition(s, "Ready") == "True")["status"]
    assert status["components"]["predictor"]["latestRolledoutRevision"] == "kn-predictor-00001"
    serving.patch("kn", {"spec": {"predictor": {"canaryTrafficPercent": 20, "model": model(v2, "s2")}}})
    status = serving.wait("kn", lambda s: s["components"]["predictor"].get("latestReadyRevision")
                          == "kn-predictor-00002")["status"]
    traffic = status["components"]["predictor"]["traffic"]
    assert [(t["revisionName"], t["percent"]) for t in traffic] == [("kn-predictor-00002", 20),
                                                                     ("kn-predictor-00001", 80)]
    answers = [predict(status["url"], "kn")[1][0] for _ in range(50)]
    assert answers.count("b") == 10
    serving.patch("kn", {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    status = serving.wait("kn", lambda s: s["components"]["predictor"].get("latestRolledoutRevision")
                          == "kn-predictor-00002")["status"]
    assert status["components"]["predictor"]["previousRolledoutRevision"] == "kn-predictor-00001"
    assert [predict(status["url"], "kn")[1] for _ in range(5)] == [["b"]] * 5
    version = serving.get("kn")["metadata"]["resourceVersion"]
    time.sleep(1.0)  # nothing changes: nothing is written
    assert serving.get("kn")["metadata"]["resourceVersion"] == version


def test_predictor_that_cannot_load_reports_model_load_failed(serving: Serving) -> None:
    bad = serving.artifact("bad/v1", fail="boom: no such weights")
    serving.create(isvc("bad", "Standard", {"model": model(bad)}))
    status = serving.wait("bad", lambda s: "lastFailureInfo" in (s.get("modelStatus") or {}))["status"]
    info = status["modelStatus"]["lastFailureInfo"]
    assert info["reason"] == "ModelLoadFailed" and "boom: no such weights" in info["message"]
    assert info["exitCode"] == 3 and condition(status, "PredictorReady") == "False"
    missing = f"s3://{serving.store.bucket}/nothing/here"
    serving.create(isvc("missing", "Standard", {"model": model(missing)}))
    status = serving.wait("missing", lambda s: "lastFailureInfo" in (s.get("modelStatus") or {}))["status"]
    assert "No model found" in status["modelStatus"]["lastFailureInfo"]["message"]


def test_a_canary_that_cannot_load_reports_in_its_own_entry(serving: Serving) -> None:
    good, bad = serving.artifact("cbad/v1", label="a"), serving.artifact("cbad/v2", fail="broken canary")
    serving.create(isvc("cbad", "Standard", {"name": "v1", "model": model(good)},
                        canary=[{"trafficPercent": 30, "predictor": {"name": "v2", "model": model(bad)}}]))
    status = serving.wait("cbad", lambda s: "lastFailureInfo" in
                          ((s.get("canaryStatuses") or [{}])[0].get("modelStatus") or {}))["status"]
    entry = status["canaryStatuses"][0]
    assert entry["ready"] is False and "broken canary" in entry["modelStatus"]["lastFailureInfo"]["message"]
    assert "lastFailureInfo" not in status["modelStatus"]
    status = serving.wait("cbad", lambda s: condition(s, "Ready") == "True")["status"]
    assert condition(status, "CanaryPredictorReady") == "False"
    assert [predict(status["url"], "cbad") for _ in range(10)] == [(200, ["a"])] * 10  # the stable takes it all
    version = serving.get("cbad")["metadata"]["resourceVersion"]
    time.sleep(1.0)  # the same failure is not written again
    assert serving.get("cbad")["metadata"]["resourceVersion"] == version


def test_mirroring_compares_without_changing_answers(serving: Serving) -> None:
    stable, differs = serving.artifact("mir/v1", label="a"), serving.artifact("mir/v2", label="b")
    serving.create(isvc("mir", "Standard", {"name": "v1", "model": model(stable)},
                        canary=[{"trafficPercent": 0, "predictor": {"name": "v2", "model": model(differs, "cand")}}]))
    serving.patch("mir", {"metadata": {"annotations": {"podium.dev/mirror": "true"}}})
    status = serving.wait("mir", lambda s: (s.get("canaryStatuses") or [{}])[0].get("ready") is True
                          and condition(s, "Ready") == "True")["status"]
    time.sleep(0.5)  # (the router may still have the plan before the annotation)
    assert [predict(status["url"], "mir") for _ in range(20)] == [(200, ["a"])] * 20
    labels = {"inference_service": "mir", "submission": "cand"}
    deadline = time.monotonic() + 30
    while metric(scrape(serving.controller.metrics_url), "podium_router_shadow_requests_total",
                 outcome="disagree", **labels) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    text = scrape(serving.controller.metrics_url)
    assert metric(text, "podium_router_shadow_requests_total", outcome="disagree", **labels) == 20
    assert metric(text, "podium_router_shadow_requests_total", outcome="agree", **labels) == 0
    assert metric(text, "podium_router_requests_total", inference_service="mir", revision="v2") == 0
    router_metrics = scrape(status["url"] + "/metrics")
    assert metric(router_metrics, "podium_predictor_requests_total", revision="v1") == 20
    assert metric(router_metrics, "podium_predictor_requests_total", revision="v2") == 20
    assert list(text_string_to_metric_families(router_metrics))  # what an operator scraping directly parses
    # (an operator without Prometheus reads the comparisons there too)
    assert metric(router_metrics, "podium_router_shadow_requests_total", outcome="disagree", **labels) == 20


def test_no_failed_request_while_revisions_come_and_go(serving: Serving) -> None:
    uris = [serving.artifact(f"churn/v{n}", label=str(n), slow="0.02") for n in range(4)]
    serving.create(isvc("churn", "Standard", {"name": "r0", "model": model(uris[0])}))
    url = serving.wait("churn", lambda s: condition(s, "Ready") == "True")["status"]["url"]
    codes: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            codes.append(predict(url, "churn")[0])

    threads = [threading.Thread(target=client) for _ in range(4)]  # requests are in flight when one goes
    for thread in threads:
        thread.start()
    try:
        for n in (1, 2, 3):
            name = f"r{n}"
            serving.patch("churn", {"spec": {"canary": [{"trafficPercent": 50,
                                                         "predictor": {"name": name, "model": model(uris[n])}}]}})
            wanted: dict[str, Any] = {"name": name, "ready": True, "trafficPercent": 50}
            serving.wait("churn", functools.partial(_first_canary_is, wanted))
            time.sleep(0.5)
            serving.patch("churn", {"spec": {"predictor": {"name": name, "model": model(uris[n])}, "canary": None}})
            serving.wait("churn", lambda s: "canaryStatuses" not in s and condition(s, "Ready") == "True")
        serving.patch("churn", {"spec": {"predictor": {"model": model(uris[0])}}})  # a rolling update
        serving.wait("churn", lambda s: s["modelStatus"]["transitionStatus"] == "UpToDate")
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [c for c in codes if c != 200]
    print(f"churn: {len(codes)} requests, {len(failed)} failed")
    assert len(codes) > 50 and failed == []


def test_a_predictor_killed_mid_request_fails_no_request(serving: Serving) -> None:
    """A predictor that dies with requests in flight: each is retried once on another ready predictor."""
    a, b = serving.artifact("kill/a", label="a", slow="0.2"), serving.artifact("kill/b", label="b", slow="0.2")
    serving.create(isvc("kill", "Standard", {"name": "a", "model": model(a)},
                        canary=[{"trafficPercent": 50, "predictor": {"name": "b", "model": model(b)}}]))
    url = serving.wait("kill", lambda s: condition(s, "CanaryPredictorReady") == "True"
                       and condition(s, "Ready") == "True")["status"]["url"]
    results: list[tuple[int, list[Any]]] = []
    threads = [threading.Thread(target=lambda: results.append(predict(url, "kill"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # all eight are in flight, four of them at b
    os.kill(_predictor(serving, "kill", "b", lambda p: p._process.pid), signal.SIGKILL)
    for thread in threads:
        thread.join()
    assert [code for code, _ in results] == [200] * 8
    assert sorted(labels[0] for _, labels in results).count("a") >= 4


def test_deleting_an_inference_service_stops_its_router_and_predictors(serving: Serving) -> None:
    uri = serving.artifact("gone/v1", label="a")
    serving.create(isvc("gone", "Standard", {"model": model(uri)}))
    url = serving.wait("gone", lambda s: condition(s, "Ready") == "True")["status"]["url"]
    pid = _predictor(serving, "gone", "gone-predictor", lambda p: p._process.pid)
    serving.objects.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "gone")
    deadline = time.monotonic() + 30
    while predict(url, "gone")[0] != 599 or _alive(pid):
        assert time.monotonic() < deadline, "the router or the predictor outlived the InferenceService"
        time.sleep(0.1)


def _first_canary_is(wanted: dict[str, Any], status: dict[str, Any]) -> bool:
    first = (status.get("canaryStatuses") or [{}])[0]
    return all(first.get(k) == v for k, v in wanted.items())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _predictor_url(serving: Serving, name: str, revision: str) -> str:
    return _predictor(serving, name, revision, lambda p: p.state.url)


def _predictor(serving: Serving, name: str, revision: str, get: Callable[[Any], Any]) -> Any:
    """``get(predictor)`` for the one predictor of ``revision``, in the controller's thread."""
    loop = serving.controller._loop
    assert loop is not None

    async def find() -> Any:
        served = serving.controller.served()[("default", name)]
        found = [p for p in served.predictors.values() if p.instance.revision == revision]
        assert len(found) == 1
        return get(found[0])

    return asyncio.run_coroutine_threadsafe(find(), loop).result()
