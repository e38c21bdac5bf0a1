"""The chart's serving pieces: KServe's runtime for the `podium` format, the predictors' identity, the RBAC."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests import gotemplate
from tests.chart import CHART, default_values, problems, render

SERVING = ("servingruntime.yaml", "predictor-serviceaccount.yaml")


def documents(template: str, values: dict[str, Any] | None = None, namespace: str = "podium-system") -> list[dict]:
    text = render((CHART / "templates" / template).read_text(), values, namespace)
    return [d for d in yaml.safe_load_all(text) if d]


def values_with(**serving: Any) -> dict[str, Any]:
    values = copy.deepcopy(default_values())
    values["serving"].update(serving)
    return values


def test_the_runtime_serves_the_podium_format_on_both_protocols_with_metrics():
    (runtime,) = documents("servingruntime.yaml")
    assert (runtime["apiVersion"], runtime["kind"], runtime["metadata"]["name"]) == (
        "serving.kserve.io/v1alpha1", "ClusterServingRuntime", "podium")
    spec = runtime["spec"]
    assert spec["supportedModelFormats"] == [{"name": "podium", "version": "1", "autoSelect": True, "priority": 1}]
    assert spec["protocolVersions"] == ["v1", "v2"]
    assert spec["annotations"] == {"prometheus.kserve.io/port": "8080", "prometheus.kserve.io/path": "/metrics"}
    (container,) = spec["containers"]
    assert container["image"] == default_values()["images"]["predictor"]
    assert container["command"] == ["python", "-m", "podium.serving"]
    # KServe, not Helm, fills in {{.Name}}: the InferenceService's name, the model name on V1/V2 paths.
    assert container["args"] == ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"]
    assert problems(runtime) == []


def test_the_predictor_runs_as_non_root_on_a_read_only_root_filesystem():
    (runtime,) = documents("servingruntime.yaml")
    (container,) = runtime["spec"]["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # What it writes (an unpacked archive) goes to an emptyDir at its TMPDIR.
    (mount,) = container["volumeMounts"]
    assert {"name": "TMPDIR", "value": mount["mountPath"]} in container["env"]
    assert {"name": mount["name"], "emptyDir": {}} in runtime["spec"]["volumes"]


def test_the_runtime_would_be_refused_with_a_field_kserve_does_not_know():
    (runtime,) = documents("servingruntime.yaml")
    runtime["spec"]["containers"][0]["securityContext"]["runAsUsr"] = 1
    runtime["spec"]["supportedModelFormats"][0]["priority"] = "high"
    found = problems(runtime)
    assert any("runAsUsr: unknown field" in p for p in found)
    assert any("supportedModelFormats[0].priority" in p for p in found)


@pytest.mark.parametrize("template", SERVING)
def test_serving_enabled_false_renders_nothing(template):
    assert documents(template, values_with(enabled=False)) == []


def test_by_default_the_release_namespace_gets_the_predictor_identity_and_its_secret():
    found = documents("predictor-serviceaccount.yaml", namespace="ml")
    by_kind = {d["kind"]: d for d in found}
    assert sorted(by_kind) == ["Secret", "ServiceAccount"] and len(found) == 2
    account, secret = by_kind["ServiceAccount"], by_kind["Secret"]
    assert (account["metadata"]["name"], account["metadata"]["namespace"]) == ("podium-predictor", "ml")
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}] and secret["metadata"]["namespace"] == "ml"
    assert sorted(secret["stringData"]) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    for document in found:
        assert problems(document) == [], document["kind"]


def test_the_s3_annotations_come_from_the_object_store_values():
    store = default_values()["objectStore"]
    expected = {"serving.kserve.io/s3-endpoint": store["host"], "serving.kserve.io/s3-usehttps": store["useHttps"],
                "serving.kserve.io/s3-region": store["region"], "serving.kserve.io/s3-verifyssl": store["verifySsl"]}
    for document in documents("predictor-serviceaccount.yaml"):
        assert document["metadata"]["annotations"] == expected, document["kind"]


def test_the_default_host_and_scheme_are_those_of_the_endpoint():
    """KServe wants host:port and a separate https flag; the defaults must say what ``endpoint`` says."""
    store = default_values()["objectStore"]
    scheme = "https" if store["useHttps"] == "1" else "http"
    assert store["endpoint"] == f"{scheme}://{store['host']}"


def test_keys_from_values_land_in_the_secret_of_every_listed_namespace():
    values = values_with(namespaces=["team-a", "team-b"], accessKeyId="reader", secretAccessKey="s3cr3t")
    found = documents("predictor-serviceaccount.yaml", values)
    assert sorted((d["kind"], d["metadata"]["namespace"]) for d in found) == [
        ("Secret", "team-a"), ("Secret", "team-b"), ("ServiceAccount", "team-a"), ("ServiceAccount", "team-b")]
    for secret in (d for d in found if d["kind"] == "Secret"):
        assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": "reader", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    for document in found:
        assert problems(document) == [], document["kind"]


def test_an_existing_secret_is_listed_and_no_secret_is_made():
    found = documents("predictor-serviceaccount.yaml", values_with(namespaces=["team-a"], existingSecret="ro-keys"))
    (account,) = found
    assert account["kind"] == "ServiceAccount" and account["secrets"] == [{"name": "ro-keys"}]
    assert account["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == (
        default_values()["objectStore"]["host"])


def test_the_operator_may_manage_inference_services_and_read_their_status():
    from podium_operator.local.apiserver.access import ApiCall
    from tests.chart import not_granted

    calls = [ApiCall(verb, "serving.kserve.io", "inferenceservices")
             for verb in ("get", "list", "watch", "create", "patch", "update", "delete")]
    calls += [ApiCall(verb, "serving.kserve.io", "inferenceservices/status") for verb in ("get", "list")]
    calls += [ApiCall(verb, group, "events") for verb in ("create", "patch") for group in ("", "events.k8s.io")]
    assert not_granted(calls) == []


# --- the renderer itself: the Go template subset, as Helm evaluates it --------------------------------------

@pytest.mark.parametrize(("template", "expected"), [
    ("a {{- ` b` }}", "a b"),
    ("{{ if .x }}yes{{ else }}no{{ end }}", "no"),
    ("{{ if .y }}yes{{ else }}no{{ end }}", "yes"),
    ("{{ range .items }}[{{ . }}]{{ else }}none{{ end }}", "[1][2]"),
    ("{{ range .empty }}[{{ . }}]{{ else }}none{{ end }}", "none"),
    ("{{ range .items }}{{ $.y }}{{ end }}", "truetrue"),
    ("{{ .empty | default (list 7) }}", "[7]"),
    ('{{ .x | default "d" }}|{{ not .x }}', "d|true"),
    ("x\n{{- if .y }}\nz\n{{- end }}", "x\nz"),
    ('{{ "{{.Name}}" }}', "{{.Name}}"),
])
def test_the_renderer_follows_go_templates(template, expected):
    assert gotemplate.render(template, {"x": "", "y": True, "items": [1, 2], "empty": []}) == expected


@pytest.mark.parametrize("template", ["{{ include \"x\" . }}", "{{ .a | upper }}", "{{ if .a }}", "{{ end }}",
                                      "{{ .missing }}"])
def test_the_renderer_refuses_what_it_cannot_render_exactly(template):
    with pytest.raises(AssertionError):
        gotemplate.render(template, {"a": "v"})


@pytest.mark.parametrize("template", SERVING)
def test_local_modes_chart_reader_still_reads_the_serving_templates(template):
    """Local mode reads every template for the chart's bindings, without Helm (podium_operator.local...rbac)."""
    from podium_operator.local.apiserver import rbac

    read = rbac._documents(CHART / "templates" / template)
    assert sorted(d["kind"] for d in read) == sorted(d["kind"] for d in documents(template))
