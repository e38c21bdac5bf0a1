"""What a Submission was evaluated on cannot change under its score: the spec's inputs are immutable.

Checked through the API emulator, which runs the CRD's CEL transition rules as the API server does.
"""

from __future__ import annotations

import json

import kubernetes.client
import pytest

from tests.local.conftest import make_api_client

SUB = ("podium.dev", "v1alpha1", "default", "submissions")
UPLOADS = "s3://podium/uploads/default/iris/ada/"


def _submission(**source) -> dict:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission", "metadata": {"name": "s"},
            "spec": {"playground": "iris", "track": "competition", **source}}


@pytest.mark.parametrize(("source", "change", "field"), [
    ({"predictions": {"uri": f"{UPLOADS}p.npz"}}, {"predictions": {"uri": f"{UPLOADS}better.npz"}}, "predictions"),
    ({"model": {"uri": f"{UPLOADS}m.tar.gz"}}, {"model": {"preprocessorUri": f"{UPLOADS}s.tar.gz"}}, "model"),
    ({"model": {"uri": f"{UPLOADS}m.tar.gz"}}, {"track": "experiment"}, "track"),
])
def test_the_evaluated_inputs_cannot_be_patched(podium_api_server, source, change, field):
    api = kubernetes.client.CustomObjectsApi(make_api_client(podium_api_server))
    api.create_namespaced_custom_object(*SUB, _submission(**source))
    with pytest.raises(kubernetes.client.ApiException) as refused:
        api.patch_namespaced_custom_object(*SUB, "s", {"spec": change})
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert f"{field}: " in message and "create a new Submission" in message, message
    stored = api.get_namespaced_custom_object(*SUB, "s")["spec"]
    for key, value in source.items():  # as created (the server fills in defaults such as framework: auto)
        assert {k: stored[key][k] for k in value} == value


def test_what_was_not_evaluated_may_still_change(podium_api_server):
    api = kubernetes.client.CustomObjectsApi(make_api_client(podium_api_server))
    api.create_namespaced_custom_object(*SUB, _submission(predictions={"uri": f"{UPLOADS}p.npz"}))
    patched = api.patch_namespaced_custom_object(*SUB, "s", {"spec": {"description": "v2 of my idea"}})
    assert patched["spec"]["description"] == "v2 of my idea"
