"""The RBAC view of API requests (what local mode uses to check the chart's Role covers the operator)."""

from __future__ import annotations

import pytest

from podium_operator.local.apiserver.access import ApiCall, api_call, user_agent_product


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/default/pods", {}, ApiCall("list", "", "pods")),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ApiCall("watch", "", "pods")),
    ("GET", "/api/v1/namespaces/default/pods/p1/log", {}, ApiCall("get", "", "pods/log")),
    ("GET", "/api/v1/namespaces", {}, ApiCall("list", "", "namespaces")),
    ("GET", "/api/v1/namespaces/default", {}, ApiCall("get", "", "namespaces")),
    ("POST", "/apis/batch/v1/namespaces/ns/jobs", {}, ApiCall("create", "batch", "jobs")),
    ("PATCH", "/apis/podium.dev/v1alpha1/namespaces/ns/submissions/s/status", {},
     ApiCall("patch", "podium.dev", "submissions/status")),
    ("PUT", "/apis/podium.dev/v1alpha1/namespaces/ns/playgrounds/p/status", {},
     ApiCall("update", "podium.dev", "playgrounds/status")),
    ("DELETE", "/api/v1/namespaces/ns/persistentvolumeclaims/c", {}, ApiCall("delete", "", "persistentvolumeclaims")),
    ("DELETE", "/api/v1/namespaces/ns/persistentvolumeclaims", {},
     ApiCall("deletecollection", "", "persistentvolumeclaims")),
    ("GET", "/apis/podium.dev/v1alpha1/playgrounds", {"watch": "1"}, ApiCall("watch", "podium.dev", "playgrounds")),
    ("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {},
     ApiCall("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations")),
])
def test_resource_requests_map_to_rbac_verbs(method, path, query, expected):
    assert api_call(method, path, query) == expected


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/batch/v1", "/openapi/v3", "/healthz", "/version"])
def test_discovery_and_health_need_no_rule(path):
    assert api_call("GET", path, {}) is None


def test_user_agent_product():
    assert user_agent_product("kopf/1.45.2") == "kopf"
    assert user_agent_product("podium-operator/0.1.0") == "podium-operator"
    assert user_agent_product("OpenAPI-Generator/35.0.0/python") == "OpenAPI-Generator"
    assert user_agent_product("") == ""
