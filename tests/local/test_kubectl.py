"""What a kubectl user meets in the first minutes, against the API emulator over real HTTP, as on a cluster:
``explain``, the builtins' columns, ``logs job/<name>``, server-side dry runs and ``diff``, Secrets'
``stringData`` and ``fieldValidation``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from kubernetes.client import ApiException

from podium_operator.local.apiserver.server import ApiServer
from podium_operator.local.jobrunner.runner import JobRunner
from tests.local.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
PLAYGROUND = yaml.safe_load((REPO_ROOT / "examples/playground.yaml").read_text())


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """The repository's CRDs served (overrides the shared fixture, so ``api_client`` uses this one)."""
    with ApiServer(crd_paths=[REPO_ROOT / "crds"]) as server:
        yield server


@pytest.fixture
def kubectl(api_server: ApiServer, tmp_path: Path) -> Kubectl:
    kubeconfig = api_server.write_kubeconfig(tmp_path / "kubeconfig")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", f"--cache-dir={tmp_path / 'cache'}", *args], input=stdin, text=True,
                              capture_output=True, timeout=60, env={**os.environ, "KUBECONFIG": str(kubeconfig)})

    return run


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def manifest(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document)


def raw(api_server: ApiServer, method: str, path: str, body: Any = None,
        content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(api_server.server_url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {api_server.admin_token}",
                                              "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# explain


def test_kubectl_explain_shows_the_crds_fields_and_descriptions(kubectl: Kubectl) -> None:
    playground = ok(kubectl("explain", "pg"))
    assert "KIND:       Playground" in playground and "An ML task with a holdout set" in playground
    assert "metadata\t<ObjectMeta>" in playground and "spec\t<Object> -required-" in playground
    holdout = ok(kubectl("explain", "pg.spec.holdout"))
    assert "features\t<string> -required-" in holdout and "URI (s3://bucket/key" in holdout
    assert "name\t<string>" in ok(kubectl("explain", "pg.metadata"))
    for resource in ("submissions", "modeldeployments.podium.dev", "sub.spec.model"):
        assert "FIELDS:" in ok(kubectl("explain", resource)), resource
    assert "spec\t<Object>" in ok(kubectl("explain", "mdep", "--recursive"))


# The builtins' columns


def test_get_jobs_pods_events_print_the_columns_a_cluster_prints(kubectl: Kubectl, core: kubernetes.client.CoreV1Api,
                                                                 api_client: kubernetes.client.ApiClient) -> None:
    batch = kubernetes.client.BatchV1Api(api_client)
    container = {"name": "main", "image": "python:3.11"}
    job = batch.create_namespaced_job("default", {"metadata": {"name": "train"}, "spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [container]}}}})
    batch.patch_namespaced_job_status("train", "default", {"status": {
        "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:30Z", "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True"}]}})
    core.create_namespaced_pod("default", {"metadata": {"name": "train-x1"}, "spec": {"containers": [container]}})
    core.patch_namespaced_pod_status("train-x1", "default", {"status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "main", "ready": False, "restartCount": 0, "image": "python:3.11", "imageID": "",
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})
    core.create_namespaced_event("default", {"metadata": {"name": "train.1"}, "type": "Normal", "reason": "Scored",
                                             "message": "accuracy = 0.9 ", "firstTimestamp": "2026-01-01T00:00:00Z",
                                             "involvedObject": {"kind": "Submission", "name": "logreg"}})

    header, row = ok(kubectl("get", "jobs")).splitlines()
    assert header.split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row.split()[:4] == ["train", "Complete", "1/1", "90s"]
    header, row = ok(kubectl("get", "jobs", "-o", "wide")).splitlines()
    assert header.split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert row.split()[5:] == ["main", "python:3.11", f"batch.kubernetes.io/controller-uid={job.metadata.uid}"]
    header, row = ok(kubectl("get", "pods")).splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == ["train-x1", "0/1", "Completed", "0"]
    header, row = ok(kubectl("get", "events")).splitlines()
    assert [part.strip() for part in header.split("  ") if part.strip()] == [
        "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:] == ["Normal", "Scored", "submission/logreg", "accuracy", "=", "0.9"]


def test_a_job_gets_the_selector_and_pod_labels_the_job_strategy_generates(
        api_client: kubernetes.client.ApiClient) -> None:
    batch = kubernetes.client.BatchV1Api(api_client)
    spec = {"template": {"metadata": {"labels": {"app": "x"}},
                         "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}
    job = api_client.sanitize_for_serialization(batch.create_namespaced_job("default", {
        "metadata": {"name": "j"}, "spec": spec}))
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "app": "x", "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "j",
        "controller-uid": uid, "job-name": "j"}
    assert (job["spec"]["backoffLimit"], job["spec"]["completions"], job["spec"]["parallelism"]) == (6, 1, 1)


# logs


def test_kubectl_logs_job_reads_that_jobs_own_pod(kubectl: Kubectl, api_server: ApiServer,
                                                  api_client: kubernetes.client.ApiClient, tmp_path: Path) -> None:
    batch, core = kubernetes.client.BatchV1Api(api_client), kubernetes.client.CoreV1Api(api_client)

    def job(name: str, *lines: str) -> dict[str, Any]:
        code = "".join(f"print({line!r})\n" for line in lines)
        return {"metadata": {"name": name}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "python:3.11", "command": [sys.executable, "-c", code],
             "securityContext": {"runAsUser": 0}}]}}}}

    with JobRunner(api_server.url, tmp_path / "jobs", retry_delay=0.05, max_grace=0.5) as runner:
        api_server.emulator.pod_logs = runner.log_path
        for name, lines in (("aaa", ("from aaa",)), ("bbb", ("first of bbb", "last of bbb"))):  # aaa's pod sorts first
            batch.create_namespaced_job("default", job(name, *lines))
        deadline = time.monotonic() + 60
        while not all((batch.read_namespaced_job(name, "default").status or kubernetes.client.V1JobStatus()).succeeded
                      for name in ("aaa", "bbb")):
            assert time.monotonic() < deadline, "the jobs did not finish"
            time.sleep(0.1)
        assert ok(kubectl("logs", "job/bbb")) == "first of bbb\nlast of bbb\n"
        assert ok(kubectl("logs", "job/bbb", "--tail=1")) == "last of bbb\n"
        assert ok(kubectl("logs", "-f", "job/aaa")) == "from aaa\n"
        (pod,) = core.list_namespaced_pod("default", label_selector="job-name=aaa").items
        wrong = kubectl("logs", pod.metadata.name, "-c", "nope")
        assert wrong.returncode != 0 and f"container nope is not valid for pod {pod.metadata.name}" in wrong.stderr
        # The log answered text/plain; the next object read is JSON again (kmock keeps a reaction's headers).
        assert "playgrounds" in ok(kubectl("api-resources", "--api-group=podium.dev"))
        assert json.loads(ok(kubectl("get", "job", "aaa", "-o", "json")))["metadata"]["name"] == "aaa"


# Dry runs and diff


def test_server_side_dry_runs_validate_fully_and_store_nothing(kubectl: Kubectl, api_server: ApiServer,
                                                              custom: kubernetes.client.CustomObjectsApi) -> None:
    text = manifest(PLAYGROUND)
    assert ok(kubectl("apply", "--dry-run=server", "-f", "-", stdin=text)) == \
        "playground.podium.dev/iris created (server dry run)\n"
    assert custom.list_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds")["items"] == []
    would = custom.create_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds",
                                                  dict(PLAYGROUND), dry_run="All")
    assert would["spec"]["leaderboardSize"] == 20 and "resourceVersion" not in would["metadata"]  # defaulted
    ok(kubectl("apply", "-f", "-", stdin=text))
    stored = custom.get_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds", "iris")

    # A dry-run create answers what a real one would: 409 for an existing name, 422 for an invalid object.
    for body, code in ((dict(PLAYGROUND), 409), ({**PLAYGROUND, "metadata": {"name": "bad"},
                                                  "spec": {**PLAYGROUND["spec"], "task": "ranking"}}, 422)):
        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds", body,
                                                   dry_run="All")
        assert refused.value.status == code
    changed = manifest({**PLAYGROUND, "spec": {**PLAYGROUND["spec"], "primaryMetric": "f1_macro"}})
    assert "configured (server dry run)" in ok(kubectl("apply", "--dry-run=server", "-f", "-", stdin=changed))
    for args in ((), ("--server-side",)):
        diff = kubectl("diff", *args, "-f", "-", stdin=changed)
        assert diff.returncode == 1, diff.stderr  # 1: there are differences
        assert "-  primaryMetric: accuracy\n+  primaryMetric: f1_macro" in diff.stdout
    assert kubectl("diff", "-f", "-", stdin=text).returncode == 0
    ok(kubectl("delete", "pg", "iris", "--dry-run=server"))
    status, _, _ = raw(api_server, "PUT", "/apis/podium.dev/v1alpha1/namespaces/default/playgrounds/iris?dryRun=All",
                       {**stored, "spec": {**stored["spec"], "primaryMetric": "f1_macro"}})
    assert status == 200
    assert custom.get_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds", "iris") == stored
    status, _, body = raw(api_server, "POST", "/api/v1/namespaces/default/configmaps?dryRun=Some", {
        "metadata": {"name": "x"}})
    assert status == 400 and b'Unsupported value: \\"Some\\"' in body


# Secrets


def test_a_secrets_string_data_is_folded_into_data(kubectl: Kubectl, core: kubernetes.client.CoreV1Api) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "data": {"user": base64.b64encode(b"bob").decode()}, "stringData": {"user": "alice", "key": "s3cret"}}
    ok(kubectl("apply", "-f", "-", stdin=manifest(secret)))
    stored = core.read_namespaced_secret("creds", "default")
    assert stored.data == {"user": base64.b64encode(b"alice").decode(), "key": base64.b64encode(b"s3cret").decode()}
    assert stored.string_data is None and stored.type == "Opaque"
    assert ok(kubectl("get", "secret", "creds")).split()[-3:-1] == ["Opaque", "2"]
    core.patch_namespaced_secret("creds", "default", {"stringData": {"key": "changed"}})
    assert core.read_namespaced_secret("creds", "default").data["key"] == base64.b64encode(b"changed").decode()
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_secret("default", {"metadata": {"name": "bad"}, "data": {"x": "not base64!"}})
    assert refused.value.status == 400 and "illegal base64 data at input byte 3" in refused.value.body


# fieldValidation


def test_unknown_fields_are_refused_warned_or_dropped_as_field_validation_says(
        kubectl: Kubectl, api_server: ApiServer, custom: kubernetes.client.CustomObjectsApi) -> None:
    typo = {**PLAYGROUND, "spec": {**PLAYGROUND["spec"], "primaryMetrc": "f1_macro"}}
    strict = kubectl("apply", "-f", "-", stdin=manifest(typo))  # kubectl's default: --validate=strict
    assert strict.returncode != 0
    assert ('Playground in version "v1alpha1" cannot be handled as a Playground: strict decoding error: '
            'unknown field "spec.primaryMetrc"') in strict.stderr
    warned = kubectl("apply", "--validate=warn", "-f", "-", stdin=manifest(typo))
    assert warned.returncode == 0 and 'Warning: unknown field "spec.primaryMetrc"' in warned.stderr
    stored = custom.get_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds", "iris")
    assert "primaryMetrc" not in stored["spec"]
    ignored = kubectl("apply", "--validate=false", "-f", "-", stdin=manifest({**typo, "metadata": {"name": "other"}}))
    assert ignored.returncode == 0 and "Warning" not in ignored.stderr
    # Without the parameter the server warns (its default); a warning is never sent with a later response.
    base = "/apis/podium.dev/v1alpha1/namespaces/default/playgrounds"
    status, headers, _ = raw(api_server, "POST", base, {**typo, "metadata": {"name": "third"}})
    assert status == 201 and headers["Warning"] == '299 - "unknown field \\"spec.primaryMetrc\\""'
    status, headers, _ = raw(api_server, "POST", base, {**PLAYGROUND, "metadata": {"name": "fourth"}})
    assert status == 201 and "Warning" not in headers
    status, _, body = raw(api_server, "POST", f"{base}?fieldValidation=Loose", {**PLAYGROUND, "metadata": {"name": "x"}})
    assert status == 400 and b"fieldValidation" in body


def test_unknown_fields_of_builtins_are_found_too(kubectl: Kubectl, core: kubernetes.client.CoreV1Api) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "typo"}, "stringdata": {"user": "alice"}}
    refused = kubectl("apply", "-f", "-", stdin=manifest(secret))
    assert refused.returncode != 0 and ('Secret in version "v1" cannot be handled as a Secret: strict decoding error: '
                                        'unknown field "stringdata"') in refused.stderr
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "i", "comand": ["x"]}]}}}}
    warned = kubectl("create", "--validate=warn", "-f", "-", stdin=manifest(job))
    assert warned.returncode == 0 and 'unknown field "spec.template.spec.containers[0].comand"' in warned.stderr
    stored = json.loads(ok(kubectl("get", "job", "j", "-o", "json")))
    assert stored["spec"]["template"]["spec"]["containers"][0] == {"name": "c", "image": "i"}  # dropped, as on a cluster
    quantities = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{
        "name": "c", "image": "i", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
        "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]}}
    assert "Warning" not in kubectl("apply", "-f", "-", stdin=manifest(quantities)).stderr
