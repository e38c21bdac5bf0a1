"""The serving controller with its default predictor, ``python -m podium.serving``, and a real submission
artifact (scikit-learn on iris) stored as a directory prefix and as one ``.tar.gz``, as KServe fetches them."""

from __future__ import annotations

import importlib.util
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.objectstore import ObjectStore
from podium_operator.local.serving.controller import ServingController
from podium_operator.local.serving.storage import S3Access
from podium_operator.local.serving.vendor_crds import kserve_crds
from tests.local.conftest import make_api_client
from tests.local.test_serving_controller import Serving, condition, isvc

pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("podium.serving.__main__") is None,
                                                   reason="python -m podium.serving is not there yet")]


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    with ApiServer() as api, ObjectStore(bucket="predictors") as store:
        api.call(lambda: [api.emulator.apply_crd(crd) for crd in kserve_crds()])
        s3 = S3Access(store.endpoint, store.access_key, store.secret_key, store.region)
        with ServingController(api.url, tmp_path_factory.mktemp("serving"), s3) as controller, \
                make_api_client(api) as client:
            yield Serving(api, store, controller, kubernetes.client.CustomObjectsApi(client))


def upload_iris(serving: Serving, key: str, archive: bool) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from podium.artifacts.bundle import save_submission

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    client = serving.store.minio_client()
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / ("model.tar.gz" if archive else "model")
        save_submission(model, target, example_data=x[:5])
        files = [target] if archive else [p for p in target.rglob("*") if p.is_file()]
        for path in files:
            name = f"{key}/{path.name}" if archive else f"{key}/{path.relative_to(target)}"
            data = path.read_bytes()
            client.put_object(serving.store.bucket, name, io.BytesIO(data), len(data))
    return f"s3://{serving.store.bucket}/{key}/model.tar.gz" if archive else f"s3://{serving.store.bucket}/{key}"


@pytest.mark.parametrize("archive", [False, True], ids=["directory", "archive"])
def test_podium_predictor_serves_a_submission(serving: Serving, archive: bool) -> None:
    import json
    import urllib.request

    name = f"iris-{'tgz' if archive else 'dir'}"
    uri = upload_iris(serving, name, archive)
    model = {"name": "", "modelFormat": {"name": "podium"}, "runtime": "podium", "protocolVersion": "v1",
             "storageUri": uri, "env": [{"name": "PODIUM_SUBMISSION", "value": "lr"},
                                        {"name": "PODIUM_TASK", "value": "classification"}]}
    serving.create(isvc(name, "Standard", {"model": model}))
    status = serving.wait(name, lambda s: condition(s, "Ready") == "True" or "lastFailureInfo" in
                          (s.get("modelStatus") or {}), timeout=180)["status"]
    assert condition(status, "Ready") == "True", status.get("modelStatus")
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()
    request = urllib.request.Request(f"{status['url']}/v1/models/{name}:predict", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert answer["predictions"] == [0, 2]
