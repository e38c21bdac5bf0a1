"""The local Kubernetes API emulator over real HTTP: official client, kubectl and kopf."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import kubernetes.client
import kubernetes.watch
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from podium_operator.local.apiserver.selectors import match_labels, parse_label_selector
from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.apiserver.tables import human_duration, jsonpath
from tests.local.conftest import load_repo_crds, make_api_client

GROUP, VERSION, PLURAL = "example.podium.dev", "v1", "widgets"
NS = "default"

WIDGET_CRD = textwrap.dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.example.podium.dev
    spec:
      group: example.podium.dev
      scope: Namespaced
      names:
        plural: widgets
        singular: widget
        kind: Widget
        shortNames: [wdg]
        categories: [podium]
      versions:
        - name: v1
          served: true
          storage: true
          subresources:
            status: {}
          additionalPrinterColumns:
            - {name: Color, type: string, jsonPath: .spec.color}
            - {name: Size, type: integer, jsonPath: .spec.size}
            - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
            - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [color]
                  x-kubernetes-validations:
                    - {rule: "self.color != 'green' || self.size <= 5", fieldPath: .size,
                       message: green widgets are at most 5 big}
                  properties:
                    color: {type: string, enum: [red, green, blue]}
                    size: {type: integer, default: 1, minimum: 1, maximum: 10}
                    shape:
                      type: string
                      x-kubernetes-validations:
                        - {rule: self == oldSelf, message: shape is immutable}
                status:
                  type: object
                  properties:
                    phase: {type: string}
                    conditions:
                      type: array
                      items:
                        type: object
                        x-kubernetes-preserve-unknown-fields: true
    """
)


@pytest.fixture
def crd_file(tmp_path: Path) -> Path:
    path = tmp_path / "crds" / "widgets.yaml"
    path.parent.mkdir()
    path.write_text(WIDGET_CRD)
    return path


@pytest.fixture
def api_server(crd_file: Path) -> Iterator[ApiServer]:
    """Overrides the shared fixture: the same, plus the Widget CRD loaded from a file."""
    with ApiServer(crd_paths=[crd_file.parent]) as api:
        yield api


@pytest.fixture
def widgets(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def widget(name: str, color: str = "red", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name, **metadata},
        "spec": {"color": color},
    }


def create(widgets: kubernetes.client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    return widgets.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)


def get(widgets: kubernetes.client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return widgets.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)


def patch(widgets: kubernetes.client.CustomObjectsApi, name: str, body: Any, status: bool = False) -> dict[str, Any]:
    call = widgets.patch_namespaced_custom_object_status if status else widgets.patch_namespaced_custom_object
    return call(GROUP, VERSION, NS, PLURAL, name, body)


def delete(widgets: kubernetes.client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return widgets.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)


def exists(widgets: kubernetes.client.CustomObjectsApi, name: str) -> bool:
    try:
        get(widgets, name)
    except ApiException as e:
        assert e.status == 404
        return False
    return True


def names(items: list[dict[str, Any]]) -> list[str]:
    return sorted(item["metadata"]["name"] for item in items)


def watch_widgets(widgets: kubernetes.client.CustomObjectsApi, count: int, **params: Any) -> list[tuple[str, str]]:
    """Up to ``count`` (type, name) watch events; the server ends the stream after 2 s anyway."""
    events: list[tuple[str, str]] = []
    stream = kubernetes.watch.Watch().stream(
        widgets.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, timeout_seconds=2, **params
    )
    for event in stream:
        events.append((event["type"], event["object"]["metadata"]["name"]))
        if len(events) == count:
            break
    return events


def api_error(call: Any, *args: Any) -> ApiException:
    with pytest.raises(ApiException) as info:
        call(*args)
    return info.value


# Metadata, concurrency, schemas.


def test_create_stamps_metadata_and_applies_schema(widgets: kubernetes.client.CustomObjectsApi) -> None:
    body = widget("", generateName="gen-")
    body["status"] = {"phase": "Forged"}
    body["spec"]["unknown"] = "pruned"
    created = create(widgets, body)
    meta = created["metadata"]
    assert meta["name"].startswith("gen-") and len(meta["name"]) == len("gen-") + 5
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert meta["resourceVersion"].isdigit() and meta["namespace"] == NS
    assert created["spec"] == {"color": "red", "size": 1}  # defaulted and pruned
    assert "status" not in created  # status is written through /status only
    other = create(widgets, widget("other"))
    assert int(other["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])


def test_schema_violations_are_422_naming_the_field(widgets: kubernetes.client.CustomObjectsApi) -> None:
    error = api_error(create, widgets, {**widget("bad"), "spec": {"color": "pink", "size": 11}})
    assert error.status == 422
    status = json.loads(error.body)
    assert status["reason"] == "Invalid"
    assert {cause["field"] for cause in status["details"]["causes"]} == {"spec.color", "spec.size"}
    assert "spec.color" in status["message"] and "spec.size" in status["message"]
    error = api_error(create, widgets, {**widget("bad"), "spec": {}})
    assert error.status == 422 and "spec.color: Required value" in json.loads(error.body)["message"]


def test_cel_rules_are_enforced(widgets: kubernetes.client.CustomObjectsApi) -> None:
    error = api_error(create, widgets, {**widget("big"), "spec": {"color": "green", "size": 6}})
    assert error.status == 422
    assert 'spec.size: Invalid value: "object": green widgets are at most 5 big' in json.loads(error.body)["message"]

    create(widgets, {**widget("w"), "spec": {"color": "red", "shape": "round"}})  # no oldSelf on create
    assert patch(widgets, "w", {"spec": {"size": 3}})["spec"]["shape"] == "round"
    error = api_error(patch, widgets, "w", {"spec": {"shape": "square"}})
    assert error.status == 422 and "spec.shape" in json.loads(error.body)["message"]


def test_invalid_names_are_rejected(core: kubernetes.client.CoreV1Api) -> None:
    error = api_error(core.create_namespaced_config_map, NS, configmap("Not_A_Name"))
    assert error.status == 422 and "metadata.name" in json.loads(error.body)["message"]


def test_duplicate_create_is_409_already_exists(widgets: kubernetes.client.CustomObjectsApi) -> None:
    create(widgets, widget("w"))
    error = api_error(create, widgets, widget("w"))
    assert error.status == 409 and json.loads(error.body)["reason"] == "AlreadyExists"


def test_stale_resource_version_conflicts(widgets: kubernetes.client.CustomObjectsApi) -> None:
    stale = create(widgets, widget("w"))
    fresh = patch(widgets, "w", {"spec": {"size": 2}})
    assert fresh["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]

    stale_patch = {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}, "spec": {"size": 3}}
    error = api_error(patch, widgets, "w", stale_patch)
    assert error.status == 409 and json.loads(error.body)["reason"] == "Conflict"

    stale["spec"]["size"] = 4
    error = api_error(widgets.replace_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "w", stale)
    assert error.status == 409
    assert get(widgets, "w")["spec"]["size"] == 2


def test_put_replaces_the_object(widgets: kubernetes.client.CustomObjectsApi) -> None:
    current = create(widgets, widget("w"))
    current["spec"] = {"color": "blue", "size": 5}
    current["metadata"]["labels"] = {"a": "b"}
    replaced = widgets.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w", current)
    assert replaced["spec"] == {"color": "blue", "size": 5}
    assert replaced["metadata"]["labels"] == {"a": "b"}
    assert replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["uid"] == current["metadata"]["uid"]


def test_json_patch_and_its_failed_test_op(api_server: ApiServer, widgets: kubernetes.client.CustomObjectsApi) -> None:
    rv = create(widgets, widget("w"))["metadata"]["resourceVersion"]
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/w"

    def json_patch(expected_rv: str, size: int) -> int:
        # CustomObjectsApi only sends merge patches; kopf sends JSON patches like these.
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": expected_rv},
               {"op": "replace", "path": "/spec/size", "value": size}]
        request = urllib.request.Request(api_server.url + path, data=json.dumps(ops).encode(), method="PATCH",
                                         headers={"Content-Type": "application/json-patch+json"})
        try:
            return urllib.request.urlopen(request).status
        except urllib.error.HTTPError as e:
            return e.code

    assert json_patch("0", 7) == 422
    assert json_patch(rv, 8) == 200
    assert get(widgets, "w")["spec"]["size"] == 8


def test_noop_patch_keeps_the_resource_version(widgets: kubernetes.client.CustomObjectsApi) -> None:
    created = create(widgets, widget("w"))
    same = patch(widgets, "w", {"spec": {"color": "red"}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


# Status subresource and generation.


def test_generation_bumps_on_spec_changes_only(widgets: kubernetes.client.CustomObjectsApi) -> None:
    create(widgets, widget("w"))
    assert patch(widgets, "w", {"metadata": {"labels": {"x": "y"}}})["metadata"]["generation"] == 1
    assert patch(widgets, "w", {"status": {"phase": "Up"}}, status=True)["metadata"]["generation"] == 1
    assert patch(widgets, "w", {"spec": {"size": 3}})["metadata"]["generation"] == 2


def test_status_subresource_is_isolated(widgets: kubernetes.client.CustomObjectsApi) -> None:
    create(widgets, widget("w"))
    main = patch(widgets, "w", {"spec": {"size": 2}, "status": {"phase": "Ignored"}})
    assert "status" not in main and main["spec"]["size"] == 2

    status = patch(widgets, "w", {"spec": {"size": 9}, "status": {"phase": "Up", "junk": 1}}, status=True)
    assert status["spec"]["size"] == 2  # the spec is ignored on /status
    assert status["status"] == {"phase": "Up"}  # unknown status fields are pruned

    fetched = widgets.get_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "w")
    assert fetched["status"] == {"phase": "Up"}


# Selectors and watches.


def test_label_and_field_selectors_on_list(widgets: kubernetes.client.CustomObjectsApi) -> None:
    create(widgets, widget("a", labels={"tier": "web", "env": "prod"}))
    create(widgets, widget("b", labels={"tier": "db", "env": "prod"}))
    create(widgets, widget("c", labels={"tier": "web"}))

    def listed(**params: str) -> list[str]:
        return names(widgets.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, **params)["items"])

    assert listed(label_selector="tier=web") == ["a", "c"]
    assert listed(label_selector="tier==web,env=prod") == ["a"]
    assert listed(label_selector="tier!=web") == ["b"]
    assert listed(label_selector="tier in (db, web),env") == ["a", "b"]
    assert listed(label_selector="tier notin (db)") == ["a", "c"]
    assert listed(label_selector="!env") == ["c"]
    assert listed(field_selector="metadata.name=b") == ["b"]
    assert listed(field_selector="metadata.namespace!=default") == []


def test_label_selector_on_watch(widgets: kubernetes.client.CustomObjectsApi) -> None:
    start = create(widgets, widget("a", labels={"tier": "web"}))["metadata"]["resourceVersion"]
    create(widgets, widget("b", labels={"tier": "db"}))
    patch(widgets, "a", {"metadata": {"labels": {"tier": "db"}}})  # leaves the selector's view
    patch(widgets, "b", {"metadata": {"labels": {"tier": "web"}}})  # enters it

    events = watch_widgets(widgets, 2, label_selector="tier=web", resource_version=start)
    assert events == [("DELETED", "a"), ("ADDED", "b")]
    assert watch_widgets(widgets, 1, label_selector="tier=web") == [("ADDED", "b")]


def test_watch_resumes_from_a_resource_version_without_replay(widgets: kubernetes.client.CustomObjectsApi) -> None:
    create(widgets, widget("old"))
    listing = widgets.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    create(widgets, widget("new"))
    patch(widgets, "old", {"spec": {"size": 2}})

    resumed = watch_widgets(widgets, 2, resource_version=listing["metadata"]["resourceVersion"])
    assert resumed == [("ADDED", "new"), ("MODIFIED", "old")]
    assert watch_widgets(widgets, 2) == [("ADDED", "new"), ("ADDED", "old")]  # rv absent: the state first


def test_watch_from_a_forgotten_resource_version_is_410_gone(
    api_server: ApiServer, widgets: kubernetes.client.CustomObjectsApi
) -> None:
    create(widgets, widget("w"))
    api_server.call(api_server.emulator.store.changes.clear)  # as if compacted
    with pytest.raises(ApiException) as info:
        watch_widgets(widgets, 1, resource_version="1")
    assert info.value.status == 410


def test_watch_ends_after_timeout_seconds(widgets: kubernetes.client.CustomObjectsApi) -> None:
    started = time.monotonic()
    list(kubernetes.watch.Watch().stream(
        widgets.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, timeout_seconds=1, resource_version="1"
    ))
    assert 0.9 < time.monotonic() - started < 3


def test_watch_sees_live_events(widgets: kubernetes.client.CustomObjectsApi) -> None:
    rv = widgets.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["metadata"]["resourceVersion"]
    creator = threading.Timer(0.2, create, args=(widgets, widget("live")))
    creator.start()
    assert watch_widgets(widgets, 1, resource_version=rv) == [("ADDED", "live")]
    creator.join()


# Finalizers, garbage collection, namespaces.


def test_finalizer_blocks_deletion_until_removed(widgets: kubernetes.client.CustomObjectsApi) -> None:
    start = create(widgets, widget("w", finalizers=["example.podium.dev/guard"]))["metadata"]["resourceVersion"]
    deleting = delete(widgets, "w")
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    assert exists(widgets, "w")

    patch(widgets, "w", {"metadata": {"finalizers": None}})
    assert not exists(widgets, "w")
    assert watch_widgets(widgets, 2, resource_version=start) == [("MODIFIED", "w"), ("DELETED", "w")]


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"]}


def configmap(name: str, *owners: dict[str, Any], finalizers: tuple[str, ...] = ()) -> dict[str, Any]:
    metadata = {"name": name, "ownerReferences": [owner_ref(o) for o in owners], "finalizers": list(finalizers)}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


def test_owner_reference_cascade_over_two_levels(
    widgets: kubernetes.client.CustomObjectsApi, core: kubernetes.client.CoreV1Api
) -> None:
    parent = create(widgets, widget("parent"))
    other = create(widgets, widget("other"))
    child = core.create_namespaced_config_map(NS, configmap("child", parent)).to_dict()
    child = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "uid": child["metadata"]["uid"]}}
    core.create_namespaced_config_map(NS, configmap("grandchild", child, finalizers=("example.podium.dev/hold",)))
    core.create_namespaced_config_map(NS, configmap("shared", parent, other))

    delete(widgets, "parent")
    remaining = names([cm.to_dict() for cm in core.list_namespaced_config_map(NS).items])
    assert remaining == ["grandchild", "shared"]  # held by a finalizer; still owned by "other"
    assert core.read_namespaced_config_map("grandchild", NS).metadata.deletion_timestamp is not None

    core.patch_namespaced_config_map("grandchild", NS, {"metadata": {"finalizers": []}})
    delete(widgets, "other")
    assert core.list_namespaced_config_map(NS).items == []


def test_namespaces(core: kubernetes.client.CoreV1Api, widgets: kubernetes.client.CustomObjectsApi) -> None:
    assert {"default", "kube-system"} <= {ns.metadata.name for ns in core.list_namespace().items}
    error = api_error(core.create_namespaced_config_map, "nowhere", configmap("cm"))
    assert error.status == 404 and json.loads(error.body)["message"] == 'namespaces "nowhere" not found'

    core.create_namespace({"metadata": {"name": "team"}})
    assert core.read_namespace("team").status.phase == "Active"
    core.create_namespaced_config_map("team", configmap("cm"))
    held = widgets.create_namespaced_custom_object(
        GROUP, VERSION, "team", PLURAL, widget("held", finalizers=["example.podium.dev/hold"])
    )
    core.delete_namespace("team")
    assert core.read_namespace("team").status.phase == "Terminating"
    assert core.list_namespaced_config_map("team").items == []
    error = api_error(core.create_namespaced_config_map, "team", configmap("late"))
    assert error.status == 403

    widgets.patch_namespaced_custom_object(
        GROUP, VERSION, "team", PLURAL, held["metadata"]["name"], {"metadata": {"finalizers": []}}
    )
    assert "team" not in {ns.metadata.name for ns in core.list_namespace().items}


# Discovery and CRDs.


def test_discovery_of_crds_and_builtins(api_client: kubernetes.client.ApiClient) -> None:
    def fetch(path: str) -> dict[str, Any]:
        url = api_client.configuration.host + path
        headers = {"Accept": "application/json", "Authorization": api_client.configuration.api_key["authorization"]}
        response = api_client.call_api("GET", url, headers)
        response.read()
        return json.loads(response.data)

    widgets_list = fetch(f"/apis/{GROUP}/{VERSION}")
    by_name = {entry["name"]: entry for entry in widgets_list["resources"]}
    assert by_name["widgets"] | {"verbs": None} == {
        "name": "widgets", "singularName": "widget", "namespaced": True, "kind": "Widget", "verbs": None,
        "shortNames": ["wdg"], "categories": ["podium"],
    }
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(by_name["widgets"]["verbs"])
    assert by_name["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert GROUP in {group["name"] for group in fetch("/apis")["groups"]}
    assert fetch("/version")["gitVersion"] == "v1.31.0"

    expected = {
        "/api/v1": {"pods/status", "events", "namespaces", "secrets", "configmaps"},
        "/apis/batch/v1": {"jobs", "jobs/status"},
        "/apis/networking.k8s.io/v1": {"networkpolicies"},
        "/apis/coordination.k8s.io/v1": {"leases"},
        "/apis/apiextensions.k8s.io/v1": {"customresourcedefinitions"},
    }
    for path, resources in expected.items():
        assert resources <= {entry["name"] for entry in fetch(path)["resources"]}, path


def test_crds_created_and_deleted_at_runtime(api_client: kubernetes.client.ApiClient) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    widgets = kubernetes.client.CustomObjectsApi(api_client)
    extensions.delete_custom_resource_definition("widgets.example.podium.dev")  # loaded from the file
    assert api_error(widgets.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL).status == 404

    crd = extensions.create_custom_resource_definition(yaml.safe_load(WIDGET_CRD))
    assert {c.type for c in crd.status.conditions} == {"Established", "NamesAccepted"}
    create(widgets, widget("w"))
    assert names(widgets.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]) == ["w"]

    extensions.delete_custom_resource_definition(crd.metadata.name)
    assert api_error(widgets.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL).status == 404


def test_restarted_server_keeps_url_and_objects(api_server: ApiServer, widgets: kubernetes.client.CustomObjectsApi) -> None:
    url = api_server.url
    rv = create(widgets, widget("w"))["metadata"]["resourceVersion"]
    api_server.stop()
    api_server.start()
    assert api_server.url == url
    patch(widgets, "w", {"spec": {"size": 2}})
    assert watch_widgets(widgets, 1, resource_version=rv) == [("MODIFIED", "w")]


# kubectl.


@pytest.fixture
def kubectl(api_server: ApiServer, tmp_path: Path) -> Any:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")

    def run(*args: str, stdin: str | None = None) -> str:
        command = ["kubectl", f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}", *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30,
                                env={**os.environ, "KUBECONFIG": str(kubeconfig)})
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
        return result.stdout

    return run


def test_kubectl_apply_get_and_delete(kubectl: Any, widgets: kubernetes.client.CustomObjectsApi) -> None:
    manifest = yaml.safe_dump(widget("applied", color="green"))
    assert "created" in kubectl("apply", "-f", "-", stdin=manifest)
    assert "configured" in kubectl("apply", "-f", "-", stdin=manifest.replace("green", "blue"))
    assert "unchanged" in kubectl("apply", "-f", "-", stdin=manifest.replace("green", "blue"))
    assert get(widgets, "applied")["spec"] == {"color": "blue", "size": 1}

    as_yaml = yaml.safe_load(kubectl("get", "widget", "applied", "-o", "yaml"))
    assert as_yaml["spec"]["color"] == "blue" and as_yaml["metadata"]["generation"] == 2

    for resource_name in ("widgets", "wdg", "podium", "widgets.example.podium.dev"):
        assert "applied" in kubectl("get", resource_name), resource_name

    assert 'deleted' in kubectl("delete", "widget", "applied")
    assert not exists(widgets, "applied")


def test_kubectl_apply_rejects_unknown_fields(kubectl: Any) -> None:
    manifest = widget("typo")
    manifest["spec"]["colour"] = "red"
    with pytest.raises(AssertionError, match='strict decoding error: unknown field "spec.colour"'):
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))


def test_kubectl_table_shows_printer_columns(
    kubectl: Any, widgets: kubernetes.client.CustomObjectsApi, core: kubernetes.client.CoreV1Api
) -> None:
    create(widgets, widget("w", color="green"))
    patch(widgets, "w", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, status=True)
    header, row = kubectl("get", "widgets").splitlines()
    assert header.split() == ["NAME", "COLOR", "SIZE", "READY", "AGE"]
    assert row.split()[:4] == ["w", "green", "1", "True"] and row.split()[4].endswith("s")
    core.create_namespaced_config_map(NS, configmap("cm"))
    header, row = kubectl("get", "configmaps").splitlines()
    assert header.split() == ["NAME", "DATA", "AGE"] and row.split()[:2] == ["cm", "0"]  # as kube-apiserver prints


def test_kubectl_wait_for_condition(kubectl: Any, widgets: kubernetes.client.CustomObjectsApi) -> None:
    create(widgets, widget("w"))
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    threading.Timer(0.5, patch, args=(widgets, "w", ready), kwargs={"status": True}).start()
    output = kubectl("wait", "--for=condition=Ready", "widget/w", "--timeout=10s")
    assert "condition met" in output


# kopf.


def test_kopf_operator_handles_widgets_and_does_not_recreate_on_restart(
    api_server: ApiServer, widgets: kubernetes.client.CustomObjectsApi
) -> None:
    created: list[str] = []
    resumed: list[str] = []
    deleted: list[str] = []
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=api_server.server_url, token=api_server.admin_token, default_namespace=NS)

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def on_create(name: str, patch: kopf.Patch, **_: Any) -> None:
        created.append(name)
        patch.status["phase"] = "Ready"

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    def on_resume(name: str, **_: Any) -> None:
        resumed.append(name)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def on_delete(name: str, **_: Any) -> None:
        deleted.append(name)

    create(widgets, widget("w"))
    with KopfRunner(["run", "--standalone", "-A"], registry=registry, timeout=30) as runner:
        _wait_until(lambda: get(widgets, "w").get("status", {}).get("phase") == "Ready")
        time.sleep(0.3)  # let kopf see its own patches: they must not trigger anything
    assert runner.exception is None and "Traceback" not in runner.output, runner.output
    assert (created, resumed) == (["w"], [])
    assert get(widgets, "w")["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]

    # A namespace glob makes kopf list and watch /api/v1/namespaces as well.
    api_server.emulator.request_history = 100_000  # keep kmock's request log for the check below
    with KopfRunner(["run", "--standalone", "--namespace=def*"], registry=registry, timeout=30) as runner:
        _wait_until(lambda: resumed == ["w"])  # a restart resumes, it does not create again
        delete(widgets, "w")
        _wait_until(lambda: not exists(widgets, "w"))  # kopf released its finalizer
    assert runner.exception is None and "Traceback" not in runner.output, runner.output
    assert (created, resumed, deleted) == (["w"], ["w"], ["w"])
    watched = {(r.url.path, r.params.get("watch")) for r in api_server.emulator}  # kmock's request log
    assert ("/api/v1/namespaces", "true") in watched


# Identities: bearer tokens, the chart's RBAC, admission of the submitter.

SUBMISSIONS = ("podium.dev", "v1alpha1", NS, "submissions")
SUBMITTER = "podium.dev/submitter"


def _raw(api_server: ApiServer, method: str, path: str, token: str | None = None, body: Any = None,
         content_type: str = "application/json", base: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token is not None else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request((base or api_server.server_url) + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _submission(name: str, claimed: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission",
            "metadata": {"name": name, "annotations": {SUBMITTER: claimed} if claimed else {}},
            "spec": {"playground": "iris", "track": "experiment",
                     "predictions": {"uri": f"s3://podium/uploads/default/iris/{claimed or 'x'}/p.npz"}}}


def test_requests_need_a_valid_token_but_health_checks_do_not(api_server: ApiServer) -> None:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}"
    for token in (None, "", "wrong"):
        status, body = _raw(api_server, "GET", path, token)
        assert (status, body["reason"], body["kind"]) == (401, "Unauthorized", "Status"), token
    assert _raw(api_server, "GET", path, base=f"{api_server.server_url}/podium-token/wrong")[0] == 401
    assert _raw(api_server, "GET", path, api_server.admin_token)[0] == 200
    assert _raw(api_server, "GET", path, base=api_server.url)[0] == 200  # the admin's token leads the path
    with urllib.request.urlopen(api_server.server_url + "/healthz") as response:  # as system:public-info-viewer
        assert response.read() == b"ok"
    assert _raw(api_server, "GET", "/version", "wrong")[0] == 401  # a bad token is refused everywhere


def test_users_get_what_their_chart_role_grants(api_server: ApiServer) -> None:
    load_repo_crds(api_server)
    alice, carol = api_server.add_user("alice"), api_server.add_user("carol", role="owner")
    base = "/apis/podium.dev/v1alpha1/namespaces/default"
    assert _raw(api_server, "POST", f"{base}/submissions", alice, _submission("s"))[0] == 201
    assert _raw(api_server, "GET", f"{base}/playgrounds", alice)[0] == 200
    status, body = _raw(api_server, "PATCH", f"{base}/submissions/s/status", alice, {"status": {"score": 1}},
                        "application/merge-patch+json")
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == ('submissions.podium.dev "s" is forbidden: User "alice" cannot patch resource '
                               '"submissions/status" in API group "podium.dev" in the namespace "default"')
    assert body["details"] == {"name": "s", "group": "podium.dev", "kind": "submissions"}
    assert _raw(api_server, "GET", "/api/v1/namespaces/default/secrets", alice)[0] == 403
    assert _raw(api_server, "DELETE", f"{base}/submissions/s", alice)[0] == 403
    assert _raw(api_server, "GET", "/apis/podium.dev/v1alpha1/submissions", alice)[0] == 403  # bound in default only
    assert _raw(api_server, "GET", "/apis/podium.dev/v1alpha1/namespaces/other/submissions", alice)[0] == 403
    assert _raw(api_server, "GET", "/apis", alice)[0] == 200  # discovery needs no rule
    assert _raw(api_server, "DELETE", f"{base}/submissions/s", carol)[0] == 200
    assert _raw(api_server, "GET", "/api/v1/namespaces/default/secrets", api_server.admin_token)[0] == 200
    with pytest.raises(ValueError, match="DNS label"):
        api_server.add_user("Mallory!")
    with pytest.raises(ValueError, match="no ClusterRole"):
        api_server.add_user("mallory", role="cluster-admin")


def test_self_subject_review_says_who_is_asking(api_server: ApiServer) -> None:
    token = api_server.add_user("alice", groups=["team-a"])
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    status, body = _raw(api_server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", token, review)
    assert status == 201
    assert body["status"]["userInfo"] == {"username": "alice", "groups": ["team-a", "system:authenticated"]}
    with make_api_client(api_server) as client:
        admin = kubernetes.client.AuthenticationV1Api(client).create_self_subject_review(
            kubernetes.client.V1SelfSubjectReview())
    assert admin.status.user_info.username == "podium-admin" and "system:masters" in admin.status.user_info.groups


def test_the_submitter_is_stamped_at_create_and_kept_on_update(api_server: ApiServer) -> None:
    load_repo_crds(api_server)
    alice = api_server.add_user("alice")
    base = "/apis/podium.dev/v1alpha1/namespaces/default/submissions"
    status, created = _raw(api_server, "POST", base, alice, _submission("s", claimed="bob"))
    assert status == 201 and created["metadata"]["annotations"][SUBMITTER] == "alice"
    with make_api_client(api_server) as client:  # even the admin cannot change it afterwards
        subs = kubernetes.client.CustomObjectsApi(client)
        patched = subs.patch_namespaced_custom_object(*SUBMISSIONS, "s", {"metadata": {"annotations": {SUBMITTER: "bob"}}})
        assert patched["metadata"]["annotations"][SUBMITTER] == "alice"
        replaced = subs.replace_namespaced_custom_object(*SUBMISSIONS, "s", {
            **patched, "metadata": {**patched["metadata"], "annotations": {}}})
        assert replaced["metadata"]["annotations"][SUBMITTER] == "alice"
        mine = subs.create_namespaced_custom_object(*SUBMISSIONS, _submission("t", claimed="alice"))
        assert mine["metadata"]["annotations"][SUBMITTER] == "podium-admin"
    status, denied = _raw(api_server, "PATCH", f"{base}/u?fieldManager=kubectl", alice, _submission("u"),
                          "application/apply-patch+yaml")
    assert status == 403 and 'cannot patch resource "submissions"' in denied["message"]  # apply is a patch
    _, applied = _raw(api_server, "PATCH", f"{base}/u?fieldManager=kubectl", api_server.admin_token,
                      _submission("u", claimed="bob"), "application/apply-patch+yaml")
    assert applied["metadata"]["annotations"][SUBMITTER] == "podium-admin", applied  # an apply that creates


def test_kubeconfigs_hold_the_users_tokens(api_server: ApiServer, tmp_path: Path) -> None:
    alice = api_server.add_user("alice")
    admin_config = yaml.safe_load(api_server.write_kubeconfig(tmp_path / "kubeconfig").read_text())
    assert [c["name"] for c in admin_config["contexts"]] == ["podium-local", "alice"]
    assert admin_config["current-context"] == "podium-local"
    path = api_server.write_kubeconfig(tmp_path / "alice", user="alice")
    assert path.stat().st_mode & 0o077 == 0  # tokens: owner only
    assert api_server.admin_token not in path.read_text() and alice in path.read_text()
    client = kubernetes.config.new_client_from_config(config_file=str(path))
    review = kubernetes.client.AuthenticationV1Api(client).create_self_subject_review(
        kubernetes.client.V1SelfSubjectReview())
    assert review.status.user_info.username == "alice"


def _wait_until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# Pure helpers.


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=1,b", {"a": "1", "b": ""}, True),
        ("a in (1, 2)", {"a": "3"}, False),
        ("a notin (1)", {}, True),
        ("!a", {"a": "1"}, False),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert match_labels(parse_label_selector(selector), labels) is expected


def test_jsonpath_and_ages() -> None:
    obj = {"status": {"conditions": [{"type": "A", "status": "x"}, {"type": "Ready", "status": "True"}]}}
    assert jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath(obj, ".status.conditions[*].type") == ["A", "Ready"]
    assert jsonpath(obj, ".status.missing") == []
    assert [human_duration(s) for s in (5, 150, 3 * 3600 + 60, 3 * 86400)] == ["5s", "2m30s", "3h1m", "3d"]
