"""The Helm chart renders to valid Kubernetes objects."""

from __future__ import annotations

import pytest
import yaml

from tests.chart import CHART, problems, render

TEMPLATES = sorted((CHART / "templates").glob("*.yaml"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_renders_to_valid_objects(template):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documents = [d for d in yaml.safe_load_all(render(template.read_text(), values)) if d]
    assert documents
    for document in documents:
        assert problems(document) == [], document["kind"]


def test_operator_deployment_is_single_replica_recreate():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    deployment = yaml.safe_load(render((CHART / "templates/deployment.yaml").read_text(), values))
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"


def test_rbac_check_names_what_the_cluster_role_does_not_grant():
    from podium_operator.local.apiserver.access import ApiCall
    from tests.chart import not_granted

    granted = [ApiCall("create", "", "persistentvolumeclaims"), ApiCall("patch", "podium.dev", "submissions/status"),
               ApiCall("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations")]
    missing = [ApiCall("delete", "", "nodes"), ApiCall("delete", "podium.dev", "playgrounds")]
    assert not_granted(granted + missing) == sorted(missing)


def test_webhook_service_reaches_the_port_the_operator_serves_on():
    from tests.chart import rendered_documents

    (deployment,) = rendered_documents("deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    service = next(d for d in rendered_documents("service.yaml") if d["metadata"]["name"] == "podium-operator-webhook")
    assert env["PODIUM_WEBHOOK_HOST"] == "podium-operator-webhook.podium-system.svc"
    (port,) = service["spec"]["ports"]
    assert str(port["port"]) == env["PODIUM_WEBHOOK_PORT"]  # kopf registers https://HOST:PORT
    assert any(p["name"] == port["targetPort"] and str(p["containerPort"]) == env["PODIUM_WEBHOOK_PORT"]
               for p in container["ports"])


WRITES = ("create", "update", "patch", "delete")


def _grants(role: str, verb: str, group: str, resource: str) -> bool:
    from podium_operator.local.apiserver.access import ApiCall
    from tests.chart import not_granted

    return not not_granted([ApiCall(verb, group, resource)], role_name=role)


@pytest.mark.parametrize("role", ["podium-participant", "podium-playground-owner"])
def test_people_never_write_status_secrets_or_configmaps(role):
    """Statuses are the operator's view of its own records; a participant writing them must be impossible."""
    for resource in ("submissions/status", "playgrounds/status", "modeldeployments/status"):
        assert not any(_grants(role, verb, "podium.dev", resource) for verb in WRITES), (role, resource)
    for resource in ("secrets", "configmaps"):
        assert not any(_grants(role, verb, "", resource) for verb in ("get", "list", "watch", *WRITES)), resource


def test_participants_submit_and_read_but_only_owners_change_or_close_playgrounds():
    assert _grants("podium-participant", "create", "podium.dev", "submissions")
    assert _grants("podium-participant", "get", "podium.dev", "playgrounds")
    assert not any(_grants("podium-participant", verb, "podium.dev", "playgrounds") for verb in WRITES)
    assert not any(_grants("podium-participant", verb, "podium.dev", "submissions") for verb in ("update", "patch"))
    assert _grants("podium-playground-owner", "patch", "podium.dev", "playgrounds")  # close the competition


def test_the_operator_reads_the_charts_training_settings_as_the_p100_pool(monkeypatch):
    from podium_operator.settings import OperatorConfig
    from tests.chart import rendered_documents

    (deployment,) = rendered_documents("deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for env in container["env"]:
        if "value" in env:
            monkeypatch.setenv(env["name"], env["value"])
    config = OperatorConfig.from_env()
    assert config.trainer_image == "ghcr.io/podium-dev/trainer:0.1.0" and config.gpu_pool is True
    assert config.gpu_node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-p100"}
    assert config.gpu_tolerations == ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
    assert config.training_progress_seconds == 10
