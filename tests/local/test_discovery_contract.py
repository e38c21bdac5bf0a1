"""A local cluster publishes its object store as a cluster with the chart does: ConfigMap ``podium-client`` in
``podium-system`` (readable by every user) and each kubeconfig user's own credentials in the extension
``podium.dev/object-store``, which kubectl keeps."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import minio
import pytest
import yaml

from podium.discovery import CONFIG_MAP, CONFIG_NAMESPACE, EXTENSION, kubeconfig_credentials
from podium_operator.local.cluster import LocalCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster", operator=False) as running:
        yield running


def extension(kubeconfig: Path, user: str) -> dict[str, Any]:
    document = yaml.safe_load(kubeconfig.read_text())
    (entry,) = [u["user"] for u in document["users"] if u["name"] == user]
    (found,) = [e["extension"] for e in entry.get("extensions", []) if e["name"] == EXTENSION]
    return dict(found)


def test_the_object_store_is_published_in_a_config_map(cluster: LocalCluster) -> None:
    assert cluster.api is not None and cluster.store is not None
    config = kubernetes.client.Configuration()
    config.host = cluster.api.url
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))
    published = core.read_namespaced_config_map(CONFIG_MAP, CONFIG_NAMESPACE).data
    assert published == {"endpoint": cluster.store.endpoint, "bucket": "podium", "region": "us-east-1"}


def test_each_kubeconfig_user_carries_its_own_object_store_credentials(cluster: LocalCluster) -> None:
    assert cluster.store is not None
    alice = cluster.add_user("alice")
    admin = extension(cluster.kubeconfig, "podium-local")
    assert admin == {"accessKeyId": cluster.store.access_key, "secretAccessKey": cluster.store.secret_key}
    own = {"accessKeyId": alice["AWS_ACCESS_KEY_ID"], "secretAccessKey": alice["AWS_SECRET_ACCESS_KEY"]}
    assert extension(Path(alice["KUBECONFIG"]), "alice") == own == extension(cluster.kubeconfig, "alice")

    # The SDK's discovery reads them; the store lets them write below alice's own uploads only.
    found = kubeconfig_credentials(alice["KUBECONFIG"])
    assert found is not None and (found.access_key, found.secret_key) == (own["accessKeyId"], own["secretAccessKey"])
    client = minio.Minio(cluster.store.endpoint.removeprefix("http://"), access_key=found.access_key,
                         secret_key=found.secret_key, region="us-east-1", secure=False)
    client.put_object("podium", "uploads/default/iris/alice/model.tar.gz", io.BytesIO(b"1"), 1)
    with pytest.raises(minio.error.S3Error, match="AccessDenied"):
        client.put_object("podium", "uploads/default/iris/bob/model.tar.gz", io.BytesIO(b"1"), 1)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_keeps_the_extension_and_every_user_may_read_only_that_config_map(cluster: LocalCluster) -> None:
    alice = cluster.add_user("alice")

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "KUBECONFIG": alice["KUBECONFIG"]})

    viewed = yaml.safe_load(kubectl("config", "view", "--raw").stdout)
    assert viewed["users"][0]["user"]["extensions"][0]["name"] == EXTENSION
    read = kubectl("get", "configmap", CONFIG_MAP, "-n", CONFIG_NAMESPACE, "-o", "jsonpath={.data.bucket}")
    assert read.returncode == 0 and read.stdout == "podium", read.stderr
    for denied in (("get", "configmaps", "-n", CONFIG_NAMESPACE), ("get", "configmap", "other", "-n", CONFIG_NAMESPACE),
                   ("get", "configmap", CONFIG_MAP, "-n", "default")):
        refused = kubectl(*denied)
        assert refused.returncode != 0 and 'User "alice" cannot' in refused.stderr, denied
