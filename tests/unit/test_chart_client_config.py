"""The chart publishes where clients find the object store (ConfigMap podium-client), readable by every user."""

from __future__ import annotations

from podium import discovery
from tests.chart import default_values, rendered_documents


def test_the_chart_publishes_the_client_config_map():
    documents = {d["kind"]: d for d in rendered_documents("client-config.yaml")}
    config_map = documents["ConfigMap"]
    store = default_values()["objectStore"]
    assert (config_map["metadata"]["name"], config_map["metadata"]["namespace"]) == (
        discovery.CONFIG_MAP, discovery.CONFIG_NAMESPACE)
    assert config_map["data"] == {"endpoint": store["clientEndpoint"], "bucket": store["bucket"],
                                  "region": store["region"]}
    assert not any("secret" in key.lower() or "key" in key.lower() for key in config_map["data"])


def test_every_authenticated_user_may_read_it_and_nothing_else():
    documents = {d["kind"]: d for d in rendered_documents("client-config.yaml")}
    (rule,) = documents["Role"]["rules"]
    assert rule == {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [discovery.CONFIG_MAP],
                    "verbs": ["get"]}
    binding = documents["RoleBinding"]
    assert binding["roleRef"]["name"] == documents["Role"]["metadata"]["name"]
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:authenticated"}]
