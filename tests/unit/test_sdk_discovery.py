"""The SDK finds the object store from the cluster it talks to: ConfigMap podium-system/podium-client for where,
the kubeconfig user's ``podium.dev/object-store`` extension (after explicit arguments and ``AWS_*``) for how.

Against a real local API emulator and a real S3 server on loopback; no environment variables needed."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from podium import discovery
from podium.client import ModelPlayground
from podium.progress import Status, Transfer
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.objectstore import Grant, ObjectStore

REPO = Path(__file__).resolve().parents[2]
ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
       "AWS_REGION", "PODIUM_S3_ENDPOINT", "PODIUM_S3_BUCKET", "AWS_PROFILE")


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the environment, and a boto3 chain that finds nothing and asks no metadata service."""
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for key in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)


def kubeconfig(path: Path, users: dict[str, dict | None], current: str) -> str:
    """A kubeconfig with one context per user; a dict value is that user's object-store extension."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": f"{name}-user"}} for name in users],
        "users": [{"name": f"{name}-user", "user": {"token": "t", **({"extensions": [
            {"name": "other.example/thing", "extension": {"x": 1}},
            {"name": discovery.EXTENSION, "extension": value}]} if value else {})}} for name, value in users.items()],
    }))
    return str(path)


def test_credentials_come_from_the_current_kubeconfig_user(tmp_path):
    path = kubeconfig(tmp_path / "config", {"alice": {"accessKeyId": "AK", "secretAccessKey": "SK"}, "bob": None},
                      current="alice")
    found = discovery.kubeconfig_credentials(path)
    assert (found.access_key, found.secret_key, found.source) == ("AK", "SK", "the kubeconfig user alice-user")
    assert discovery.kubeconfig_credentials(path, context="bob") is None


def test_a_kubeconfig_list_is_merged_as_kubectl_does(tmp_path, monkeypatch):
    first = kubeconfig(tmp_path / "a", {"alice": None}, current="carol")
    second = kubeconfig(tmp_path / "b", {"alice": {"accessKeyId": "no", "secretAccessKey": "no"},
                                         "carol": {"accessKeyId": "C", "secretAccessKey": "S"}}, current="alice")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    found = discovery.kubeconfig_credentials()
    assert found is not None and found.access_key == "C"  # the first file's current context; its users first
    assert discovery.kubeconfig_credentials(context="alice") is None  # alice's entry in the first file wins


def test_the_order_of_credentials(tmp_path, monkeypatch):
    path = kubeconfig(tmp_path / "config", {"alice": {"accessKeyId": "KUBE", "secretAccessKey": "s"}}, "alice")
    assert discovery.credentials(kubeconfig=path, access_key="ARG", secret_key="s").access_key == "ARG"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert discovery.credentials(kubeconfig=path).access_key == "ENV"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    assert discovery.credentials(kubeconfig=path).access_key == "KUBE"
    shared = tmp_path / "aws-credentials"
    shared.write_text("[default]\naws_access_key_id = BOTO\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    none = kubeconfig(tmp_path / "none", {"bob": None}, "bob")
    found = discovery.credentials(kubeconfig=none)
    assert found.access_key == "BOTO" and found.source.startswith("boto3's default chain")


def test_where_the_store_is(monkeypatch):
    published = {"endpoint": "http://store.example:9000", "bucket": "team", "region": "eu-west-1"}
    store, bucket = discovery.object_store(published)
    assert (store.endpoint, bucket, store.region, store.access_key) == ("http://store.example:9000", "team",
                                                                        "eu-west-1", None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws-tools.example")
    assert discovery.object_store(published)[0].endpoint == "http://store.example:9000"  # the cluster's wins
    assert discovery.object_store({})[0].endpoint == "http://aws-tools.example"
    monkeypatch.setenv("PODIUM_S3_ENDPOINT", "http://override.example")
    monkeypatch.setenv("PODIUM_S3_BUCKET", "mine")
    store, bucket = discovery.object_store(published)
    assert (store.endpoint, bucket) == ("http://override.example", "mine")


# --- End to end: a cluster that publishes its store ----------------------------------------------------

@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    with ObjectStore(bucket="team-bucket", region="eu-west-1") as running:
        running.add_grant(Grant("alice-key", "alice-secret", read_prefixes=("uploads/",), write_prefixes=("uploads/",),
                                list_prefixes=("uploads/",)))
        yield running


@pytest.fixture(scope="module")
def api_server(store: ObjectStore) -> Iterator[ApiServer]:
    with ApiServer(crd_paths=[REPO / "crds"]) as server:
        config = kubernetes.client.Configuration()
        config.host = server.url
        core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))
        core.create_namespace({"metadata": {"name": discovery.CONFIG_NAMESPACE}})
        core.create_namespaced_config_map(discovery.CONFIG_NAMESPACE, {
            "metadata": {"name": discovery.CONFIG_MAP},
            "data": {"endpoint": store.endpoint, "bucket": store.bucket, "region": store.region}})
        yield server


def test_the_sdk_needs_only_a_kubeconfig(api_server, store, tmp_path):
    path = api_server.write_kubeconfig(tmp_path / "kubeconfig")
    config = yaml.safe_load(path.read_text())
    config["users"][0]["user"]["extensions"] = [
        {"name": discovery.EXTENSION, "extension": {"accessKeyId": "alice-key", "secretAccessKey": "alice-secret"}}]
    path.write_text(yaml.safe_dump(config))
    pg = ModelPlayground("iris", kubeconfig=str(path))
    assert (pg.store.endpoint, pg.bucket, pg.store.region) == (store.endpoint, "team-bucket", "eu-west-1")
    assert "kubeconfig user" in pg.store.source
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    uri = pg._upload(source, pg._upload_uri("model", "bin"))
    assert uri.startswith("s3://team-bucket/uploads/default/iris/")
    assert store.minio_client().get_object(store.bucket, uri.split("/", 3)[3]).read() == b"weights"


def test_every_authenticated_user_may_read_where_the_store_is(api_server, store, tmp_path):
    """As the chart's Role podium-client-reader grants (bound to system:authenticated): no role needed."""
    api_server.add_user("nobody-special", role=None)
    path = api_server.write_kubeconfig(tmp_path / "kubeconfig", user="nobody-special")
    pg = ModelPlayground("iris", kubeconfig=str(path))
    assert (pg.store.endpoint, pg.bucket) == (store.endpoint, "team-bucket")


def test_a_cluster_that_publishes_nothing_leaves_it_to_the_environment(tmp_path, monkeypatch):
    with ApiServer(crd_paths=[REPO / "crds"]) as bare:
        monkeypatch.setenv("PODIUM_S3_ENDPOINT", "http://fallback.example")
        pg = ModelPlayground("iris", kubeconfig=str(bare.write_kubeconfig(tmp_path / "kubeconfig")))
        assert (pg.store.endpoint, pg.bucket) == ("http://fallback.example", discovery.DEFAULT_BUCKET)


# --- Progress --------------------------------------------------------------------------------------------

def test_progress_shows_on_a_terminal_only():
    controller, terminal = pty.openpty()
    with os.fdopen(terminal, "w") as stream:
        with Transfer("uploading m.tar.gz", stream=stream) as line:
            line.set_meta(object_name="m", total_length=2_000_000)
            line.update(1_000_000)
        shown = ""
        while not shown.endswith("\n"):  # the line's writes may arrive in pieces
            shown += os.read(controller, 4096).decode()
        assert "\ruploading m.tar.gz: 1.0 MB of 2.0 MB (50%)" in shown and shown.endswith("\n")
        with Status("waiting", stream=stream, show=False) as status:  # progress=False on a terminal
            status.set("1 Evaluated")
        os.set_blocking(controller, False)
        with pytest.raises(BlockingIOError):  # nothing was written
            os.read(controller, 4096)
    os.close(controller)
    quiet = io.StringIO()
    with Status("waiting", stream=quiet) as status:  # not a terminal
        status.set("1 Evaluated")
    assert quiet.getvalue() == ""
