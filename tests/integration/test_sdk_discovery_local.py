"""With nothing but a kubeconfig, the SDK finds local mode's object store and its credentials from the cluster
(ConfigMap podium-system/podium-client, the kubeconfig user's podium.dev/object-store extension)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from podium.client import ModelPlayground
from tests.integration.holdouts import iris_split

pytestmark = pytest.mark.slow  # flows through the real operator


@pytest.fixture
def only_a_kubeconfig(cluster, monkeypatch: pytest.MonkeyPatch):
    """The environment a new user has: KUBECONFIG and no AWS_* or PODIUM_* variable (nor AWS files)."""
    for key in [key for key in os.environ if key.startswith(("AWS_", "PODIUM_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # boto3's chain, last, must not reach further
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    return cluster


def test_the_owner_and_a_participant_need_only_their_kubeconfig(only_a_kubeconfig, monkeypatch):
    cluster = only_a_kubeconfig
    _, X_test, _, y_test = iris_split()
    owner = ModelPlayground.create("iris", X_test, y_test, task="classification", primary_metric="accuracy")
    assert owner.store.endpoint == cluster.store.endpoint and owner.bucket == cluster.store.bucket
    assert owner.store.source.startswith("the kubeconfig user")
    owner.wait_ready()

    alice = cluster.add_user("alice")
    participant = ModelPlayground("iris", kubeconfig=alice["KUBECONFIG"])
    assert participant.store.source == "the kubeconfig user alice" and participant.store.endpoint == owner.store.endpoint
    participant.submit_predictions(np.asarray(y_test), name="alices")
    (scored,) = participant.wait_for("alices", timeout=120)
    assert scored["status"]["phase"] == "Evaluated", scored["status"]
    assert scored["spec"]["predictions"]["uri"].startswith("s3://podium/uploads/default/iris/alice/")
