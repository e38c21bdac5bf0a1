"""The admission webhook: the operator serves it over TLS and registers it; it stamps the submitter.

The emulated API server calls no webhooks, so the test plays the API server: it reads the
MutatingWebhookConfiguration the operator wrote and sends AdmissionReviews to it, trusting only the
configuration's caBundle, as kube-apiserver does.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from collections.abc import Iterator
from typing import Any

import jsonpatch
import kubernetes.client
import pytest

from podium.api.submission import SUBMITTER_ANNOTATION
from podium_operator.local.cluster import LocalCluster
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

CONFIGURATION = "podium.dev"


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The operator with its webhook on loopback; yields the webhook entry it registered."""
    with LocalCluster(tmp_path_factory.mktemp("webhook") / "cluster", operator=False) as cluster:
        cluster.start_operator({"PODIUM_WEBHOOK_HOST": "127.0.0.1", "PODIUM_WEBHOOK_PORT": str(free_port())})
        config = kubernetes.client.Configuration()
        assert cluster.api is not None
        config.host = cluster.api.url
        admission = kubernetes.client.AdmissionregistrationV1Api(kubernetes.client.ApiClient(config))

        def registered() -> dict[str, Any] | None:
            try:
                found = admission.read_mutating_webhook_configuration(CONFIGURATION).to_dict()
            except kubernetes.client.ApiException:
                return None
            return (found.get("webhooks") or [None])[0]

        yield wait_for(registered, timeout=60, what="the operator to register its webhook")
        cluster.stop_operator()
        assert "Traceback" not in (cluster.state_dir / "operator.log").read_text(errors="replace")


def _review(webhook: dict[str, Any], operation: str, obj: dict, old: dict | None, user: str) -> dict:
    client = webhook["client_config"]
    context = ssl.create_default_context(cadata=base64.b64decode(client["ca_bundle"]).decode())
    review = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "review-1", "operation": operation, "namespace": "default", "name": obj["metadata"]["name"],
            "kind": {"group": "podium.dev", "version": "v1alpha1", "kind": "Submission"},
            "resource": {"group": "podium.dev", "version": "v1alpha1", "resource": "submissions"},
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": False,
        },
    }
    request = urllib.request.Request(client["url"], data=json.dumps(review).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        answer = json.loads(response.read())["response"]
    assert answer["uid"] == "review-1" and answer["allowed"] is True
    patch = json.loads(base64.b64decode(answer["patch"])) if answer.get("patch") else []
    return jsonpatch.apply_patch(obj, patch)


def _submission(submitter: str | None) -> dict[str, Any]:
    annotations = {SUBMITTER_ANNOTATION: submitter} if submitter else {}
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission",
            "metadata": {"name": "s1", "namespace": "default", "annotations": annotations},
            "spec": {"playground": "iris", "predictions": {"uri": "s3://podium/p.npz"}}}


def test_webhook_is_registered_for_submission_writes_and_fails_closed(webhook):
    (rule,) = webhook["rules"]
    assert rule["api_groups"] == ["podium.dev"] and rule["resources"] == ["submissions"]
    assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]
    assert webhook["failure_policy"] == "Fail"  # no Submission gets in unstamped while the operator is down


def test_create_is_stamped_with_the_authenticated_user_not_the_claimed_one(webhook):
    mutated = _review(webhook, "CREATE", _submission("mallory"), None, user="alice@example.com")
    assert mutated["metadata"]["annotations"][SUBMITTER_ANNOTATION] == "alice@example.com"
    unclaimed = _review(webhook, "CREATE", _submission(None), None, user="bob@example.com")
    assert unclaimed["metadata"]["annotations"][SUBMITTER_ANNOTATION] == "bob@example.com"


def test_update_cannot_change_the_submitter(webhook):
    old = _submission("alice@example.com")
    mutated = _review(webhook, "UPDATE", _submission("mallory"), old, user="mallory")
    assert mutated["metadata"]["annotations"][SUBMITTER_ANNOTATION] == "alice@example.com"
