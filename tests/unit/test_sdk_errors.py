"""The SDK's failures are one line with the fix: the API server's refusals (a real local API emulator), the
object store's (a real S3 server on loopback, verifying signatures), and the CLI's."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
from kubernetes.client import ApiException

from podium import errors, kube, storage
from podium.client import ModelPlayground
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.objectstore import ObjectStore
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
PG = ("podium.dev", "v1alpha1", "default", "playgrounds")


@pytest.fixture(scope="module")
def api_server() -> Iterator[ApiServer]:
    with ApiServer(crd_paths=[REPO / "crds"]) as server:
        yield server


@pytest.fixture
def kubeconfig(api_server: ApiServer, tmp_path: Path) -> str:
    return str(api_server.write_kubeconfig(tmp_path / "kubeconfig"))


def playground(name: str) -> dict:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Playground", "metadata": {"name": name},
            "spec": {"task": "regression", "primaryMetric": "rmse",
                     "holdout": {"features": "s3://podium/f.csv", "labels": "s3://podium/l.csv"}}}


def refused(call, *args) -> errors.ClusterError:
    with pytest.raises(errors.ClusterError) as raised, kube.translated("default"):
        call(*args)
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, ApiException)  # callers that caught the client's error still do
    return raised.value


def test_already_exists_names_the_fix(kubeconfig):
    api = kube.custom_objects(kubeconfig)
    api.create_namespaced_custom_object(*PG, playground("taken"))
    error = refused(api.create_namespaced_custom_object, *PG, playground("taken"))
    assert isinstance(error, errors.AlreadyExists) and error.status == 409
    assert str(error) == ("playground taken already exists in namespace default. Fix: choose another name, "
                          "or delete it with `kubectl delete pg taken`")
    assert json.loads(error.body)["reason"] == "AlreadyExists"  # the server's answer is kept
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_an_invalid_name_and_an_invalid_field_are_named(kubeconfig):
    api = kube.custom_objects(kubeconfig)
    error = refused(api.create_namespaced_custom_object, *PG, playground("Not_A_Name"))
    assert isinstance(error, errors.InvalidResource) and error.status == 422
    assert "metadata.name" in str(error) and "lowercase letters, digits and '-'" in str(error)
    bad = playground("bad")
    bad["spec"]["task"] = "clustering"
    error = refused(api.create_namespaced_custom_object, *PG, bad)
    assert str(error).startswith("playground bad is invalid: spec.task: ") and "podium validate" in str(error)


def test_not_found_forbidden_and_unreachable(api_server, kubeconfig, tmp_path):
    api = kube.custom_objects(kubeconfig)
    error = refused(api.get_namespaced_custom_object, *PG, "nothing")
    assert isinstance(error, errors.ResourceNotFound)
    assert str(error) == "playground nothing not found in namespace default. Fix: check the name and namespace: `kubectl get pg`"

    api_server.add_user("mallory", role=None)
    mallory = kube.custom_objects(str(api_server.write_kubeconfig(tmp_path / "m", user="mallory")))
    error = refused(mallory.list_namespaced_custom_object, *PG)
    assert isinstance(error, errors.Forbidden) and 'User "mallory" cannot list' in str(error)
    assert "podium-participant" in str(error)

    config = kubernetes.client.Configuration()
    config.host, config.retries = f"http://127.0.0.1:{free_port()}", 0
    down = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))
    error = refused(down.list_namespaced_custom_object, *PG)
    assert isinstance(error, errors.ClusterUnreachable) and "cannot reach the Kubernetes API at http://127.0.0.1:" in str(error)


def test_the_sdk_raises_them(kubeconfig):
    with pytest.raises(errors.ResourceNotFound, match="playground ghost not found"):
        ModelPlayground("ghost", kubeconfig=kubeconfig).get()
    with pytest.raises(errors.ClusterUnreachable, match="no usable kubeconfig"):
        ModelPlayground("x", kubeconfig="/nonexistent/kubeconfig")


# --- The object store: unreachable is not unauthorised -------------------------------------------------

@pytest.fixture(scope="module")
def object_store() -> Iterator[ObjectStore]:
    with ObjectStore(bucket="podium-errors") as store:
        store.minio_client().put_object(store.bucket, "there", io.BytesIO(b"1"), 1)
        yield store


@pytest.mark.parametrize("credentials", [("nobody", "x"), ("podium-local", "wrong secret"), (None, None)],
                         ids=["unknown key", "wrong secret", "anonymous"])
def test_refused_credentials_are_not_unreachable(object_store, credentials):
    store = storage.Store(object_store.endpoint, *credentials, region="us-east-1", source="the test")
    with pytest.raises(errors.StorageError) as raised:
        storage.read_bytes("s3://podium-errors/there", store=store)
    message = str(raised.value)
    assert raised.value.field == "credentials" and "\n" not in message
    assert message.startswith(f"credentials: the object store at {object_store.endpoint} refused these credentials")
    assert "credentials from the test" in message and 'eval "$(podium local env)"' in message
    assert "cannot reach" not in message


def test_unreachable_names_the_endpoint():
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = storage.Store(endpoint, "a", "b", "us-east-1")
    with pytest.raises(errors.StorageError) as raised:
        storage.read_bytes("s3://podium/x", store=store)
    assert raised.value.field == "endpoint"
    assert str(raised.value).startswith(f"endpoint: cannot reach the object store at {endpoint} for s3://podium/x (")


def test_delete_removes_an_object_and_ignores_a_missing_one(object_store):
    store = storage.Store(object_store.endpoint, object_store.access_key, object_store.secret_key, "us-east-1")
    storage.write_bytes("s3://podium-errors/gone", b"x", store=store)
    storage.delete("s3://podium-errors/gone", store=store)
    assert not storage.exists("s3://podium-errors/gone", store=store)
    storage.delete("s3://podium-errors/gone", store=store)


# --- The CLI ------------------------------------------------------------------------------------------

def test_the_cli_prints_one_line_not_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run([sys.executable, "-m", "podium.cli", "crds", str(blocker / "below")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("podium: ") and "Traceback" not in result.stderr
