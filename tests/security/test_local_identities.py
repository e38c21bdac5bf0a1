"""Local mode has identities: who submitted, quotas, membership and object access hold per user.

Played against the real operator in the local cluster: alice and bob are participants, carol owns the
playground. Each acts with only her own kubeconfig (a bearer token bound to the chart's ClusterRole) and
her own object-store credentials (a grant below her upload prefixes), and tries what she must not.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import numpy as np
import pytest
from kubernetes.client import ApiException

from podium import storage
from podium.client import ModelPlayground
from podium.errors import PodiumError
from podium.predictions import Predictions, save_predictions
from podium.uri import upload_prefix
from tests.integration.conftest import cluster, core, custom_objects  # noqa: F401  (fixtures)
from tests.integration.holdouts import iris_playground, iris_split, upload_holdout

pytestmark = pytest.mark.slow  # flows through the real operator

GROUP, VERSION, NS = "podium.dev", "v1alpha1", "default"
SUB = (GROUP, VERSION, NS, "submissions")
PG = (GROUP, VERSION, NS, "playgrounds")


@pytest.fixture
def people(cluster) -> dict[str, dict[str, str]]:  # noqa: F811
    """Each user's environment: KUBECONFIG (their own context only), AWS_* credentials, the endpoint."""
    return {"alice": cluster.add_user("alice"), "bob": cluster.add_user("bob"),
            "carol": cluster.add_user("carol", role="owner")}


@pytest.fixture
def labels(cluster, custom_objects):  # noqa: F811
    """The iris holdout (uploaded with the admin's credentials) and its labels."""
    _, X_test, _, y_test = iris_split()
    holdout = upload_holdout(X_test, y_test, "s3://podium/holdouts/iris")
    return holdout, np.asarray(y_test, dtype=object)


def make_playground(custom_objects, holdout, name: str = "iris", **spec) -> None:  # noqa: F811
    custom_objects.create_namespaced_custom_object(*PG, iris_playground(name, *holdout, **spec))
    ModelPlayground(name).wait_ready()


@contextlib.contextmanager
def acting_as(env: dict[str, str], playground: str = "iris") -> Iterator[ModelPlayground]:
    """The SDK as that user: their kubeconfig, and their credentials for the object store."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield ModelPlayground(playground, kubeconfig=env["KUBECONFIG"])


def custom_api(env: dict[str, str]) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(config_file=env["KUBECONFIG"]))


def upload_predictions(y: np.ndarray, uri: str) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        return storage.upload(save_predictions(Predictions(y), Path(scratch) / "p.npz"), uri)


def submission(name: str, uri: str, *, track: str = "experiment", playground: str = "iris",
               claimed: str | None = None) -> dict:
    annotations = {f"{GROUP}/submitter": claimed} if claimed else {}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Submission",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"playground": playground, "track": track, "predictions": {"uri": uri}}}


def forbidden(call, *args) -> dict:
    with pytest.raises(ApiException) as raised:
        call(*args)
    assert raised.value.status == 403, raised.value
    return json.loads(raised.value.body or "{}")


# --- Authentication ----------------------------------------------------------------------------------


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_requests_without_a_valid_token_are_unauthorized(cluster, people):  # noqa: F811
    server = cluster.api.server_url
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/submissions"
    for token in (None, "", "not-a-token", "podium-admin", "podium-local"):
        status, body = _get(server + path, token)
        assert (status, body.get("reason")) == (401, "Unauthorized"), (token, body)
    for prefix in ("/podium-token/not-a-token", "/podium-token/", "/podium-admin"):  # nor a token in the path
        status, body = _get(server + prefix + path)
        assert status == 401, (prefix, body)
    alice = kubernetes.config.new_client_from_config(config_file=people["alice"]["KUBECONFIG"])
    assert alice.configuration.host.startswith(server)  # her kubeconfig: her own token, nobody else's
    assert cluster.api.token_of("alice") in alice.configuration.host
    assert cluster.api.admin_token not in Path(people["alice"]["KUBECONFIG"]).read_text()
    assert _get(server + path, cluster.api.token_of("alice"))[0] == 200


def test_each_user_is_who_the_server_says(cluster, people):  # noqa: F811
    for name in ("alice", "bob", "carol"):
        with acting_as(people[name]) as playground:
            assert playground.whoami() == name
    assert ModelPlayground("iris").whoami() == "podium-admin"  # the default kubeconfig is the admin's
    assert ModelPlayground("iris", context="bob").whoami() == "bob"  # which has a context per user


# --- Who submitted, quotas, membership ------------------------------------------------------------------


def test_the_submitter_is_who_authenticated_not_who_claims(cluster, custom_objects, labels, people):  # noqa: F811
    holdout, y = labels
    make_playground(custom_objects, holdout)
    with acting_as(people["alice"]) as alice:
        uri = upload_predictions(y, f"{upload_prefix('podium', NS, 'iris', 'alice')}p.npz")
        alice.api.create_namespaced_custom_object(*SUB, submission("claims-bob", uri, claimed="bob"))
        (done,) = alice.wait_for("claims-bob", timeout=90)
    assert done["metadata"]["annotations"][f"{GROUP}/submitter"] == "alice"
    assert done["status"]["phase"] == "Evaluated" and done["status"]["submitter"] == "alice", done["status"]
    # Nor can she rewrite it afterwards: participants may not change a Submission at all.
    body = forbidden(custom_api(people["alice"]).patch_namespaced_custom_object, *SUB, "claims-bob",
                     {"metadata": {"annotations": {f"{GROUP}/submitter": "bob"}}})
    assert 'User "alice" cannot patch resource "submissions"' in body["message"], body


def test_quotas_count_per_user(cluster, custom_objects, labels, people):  # noqa: F811
    holdout, y = labels
    make_playground(custom_objects, holdout, competition={"privateFraction": 0.5, "seed": 3, "quotaPerDay": 1})
    with acting_as(people["alice"]) as alice:
        alice.submit_predictions(y, name="alice-1", track="competition")
        alice.submit_predictions(y, name="alice-2", track="competition")
        results = {s["metadata"]["name"]: s["status"] for s in alice.wait_for("alice-1", "alice-2", timeout=90)}
    with acting_as(people["bob"]) as bob:
        bob.submit_predictions(y, name="bob-1", track="competition")
        (bob_1,) = bob.wait_for("bob-1", timeout=90)
    assert results["alice-1"]["phase"] == "Evaluated", results
    assert results["alice-2"]["phase"] == "Rejected" and "alice" in results["alice-2"]["message"], results
    assert bob_1["status"]["phase"] == "Evaluated", bob_1["status"]  # alice's quota is not bob's


def test_a_private_playground_rejects_non_members(cluster, custom_objects, labels, people):  # noqa: F811
    holdout, y = labels
    make_playground(custom_objects, holdout, visibility="private", members=["alice"])
    with acting_as(people["alice"]) as alice:
        alice.submit_predictions(y, name="member")
        (member,) = alice.wait_for("member", timeout=90)
    with acting_as(people["bob"]) as bob:
        bob.submit_predictions(y, name="outsider")
        (outsider,) = bob.wait_for("outsider", timeout=90)
    assert member["status"]["phase"] == "Evaluated", member["status"]
    assert outsider["status"]["phase"] == "Rejected", outsider["status"]
    assert any(c.get("reason") == "NotAMember" for c in outsider["status"].get("conditions") or []) or (
        "bob is not a member" in outsider["status"]["message"]), outsider["status"]


# --- What participants may not do -------------------------------------------------------------------------


def test_only_the_owner_closes_the_competition(cluster, custom_objects, labels, people):  # noqa: F811
    holdout, _ = labels
    make_playground(custom_objects, holdout, competition={"privateFraction": 0.5, "seed": 3})
    with acting_as(people["bob"]) as bob:
        body = forbidden(bob.close_competition)
    assert body["reason"] == "Forbidden"
    assert 'User "bob" cannot patch resource "playgrounds" in API group "podium.dev"' in body["message"], body
    assert not ModelPlayground("iris").get()["spec"]["competition"].get("closed")
    with acting_as(people["carol"]) as carol:
        carol.close_competition()
    assert ModelPlayground("iris").get()["spec"]["competition"]["closed"] is True


def test_participants_write_no_status_and_read_no_secrets(cluster, custom_objects, labels, people):  # noqa: F811
    holdout, y = labels
    make_playground(custom_objects, holdout)
    with acting_as(people["alice"]) as alice:
        alice.submit_predictions(y, name="mine")
        alice.wait_for("mine", timeout=90)
        body = forbidden(alice.api.patch_namespaced_custom_object_status, *SUB, "mine",
                         {"status": {"score": 1.0}})
        assert 'User "alice" cannot patch resource "submissions/status"' in body["message"], body
        forbidden(alice.api.patch_namespaced_custom_object_status, *PG, "iris", {"status": {"leaderboard": []}})
        core_api = kubernetes.client.CoreV1Api(alice.api.api_client)
        forbidden(core_api.list_namespaced_secret, NS)
        forbidden(core_api.read_namespaced_secret, "podium-object-store", NS)
    with acting_as(people["carol"]) as carol:  # owners neither
        forbidden(carol.api.patch_namespaced_custom_object_status, *SUB, "mine", {"status": {"score": 1.0}})


def test_users_reach_only_their_own_uploads(cluster, custom_objects, labels, people):  # noqa: F811
    holdout, y = labels
    make_playground(custom_objects, holdout)
    with acting_as(people["bob"]) as bob:
        bob.submit_predictions(y, name="bobs")
        (bobs,) = bob.wait_for("bobs", timeout=90)
    bob_upload = bobs["spec"]["predictions"]["uri"]
    assert bob_upload.startswith(upload_prefix("podium", NS, "iris", "bob")), bob_upload
    private = storage.list_uris(f"s3://podium/podium-private/{NS}/iris/")  # as the admin: the records exist
    assert private
    with acting_as(people["alice"]):
        mine = upload_predictions(y, f"{upload_prefix('podium', NS, 'iris', 'alice')}ok.npz")
        assert storage.read_bytes(mine)  # her own upload: fine
        for attempt in (
            lambda: storage.read_bytes(bob_upload),
            lambda: storage.read_bytes(private[0]),
            lambda: storage.read_bytes(holdout[1]),  # the holdout labels
            lambda: storage.list_uris(upload_prefix("podium", NS, "iris", "bob")),
            lambda: storage.list_uris(f"s3://podium/uploads/{NS}/"),
            lambda: storage.write_bytes(bob_upload, b"overwritten"),
            lambda: storage.write_bytes(f"{upload_prefix('podium', NS, 'iris', 'bob')}planted.npz", b"x"),
            lambda: storage.write_bytes(f"s3://podium/uploads/{NS}/iris/alice-but-not/x.npz", b"x"),
        ):
            with pytest.raises(PodiumError, match="denied"):
                attempt()
    assert storage.read_bytes(bob_upload) != b"overwritten"
