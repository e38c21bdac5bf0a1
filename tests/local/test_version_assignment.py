"""Version assignment across an operator restart: a version handed out but not yet recorded is never skipped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from podium_operator import k8s
from podium_operator.controller import Controller
from podium_operator.flows.records import put_record
from podium_operator.flows.submission import _assign_version
from podium_operator.local.objectstore import ObjectStore
from podium_operator.reconcile.records import SubmissionRecord
from podium_operator.settings import OperatorConfig
from tests.local.conftest import make_api_client

NAMESPACE = "default"


def _playground() -> dict:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Playground", "metadata": {"name": "pg"},
            "spec": {"task": "regression", "holdout": {"features": "s3://b/x.csv", "labels": "s3://b/y.csv"},
                     "primaryMetric": "rmse"}}


def _submission(name: str) -> dict:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission", "metadata": {"name": name},
            "spec": {"playground": "pg", "predictions": {"uri": "s3://b/p.csv"}}}


def _controller(api_server) -> Controller:
    return Controller(k8s.KubeClient(make_api_client(api_server)), OperatorConfig.from_env())


@pytest.fixture
def object_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    """Where the operator keeps its records (the authority for versions)."""
    with ObjectStore() as store:
        for key, value in store.env().items():
            monkeypatch.setenv(key, value)
        yield store


async def _record(ctl: Controller, name: str, version: int) -> None:
    """What admission does once a version is handed out: the operator's record says so."""
    submission = await ctl.kube.get(k8s.SUBMISSIONS, NAMESPACE, name)
    await put_record(ctl, NAMESPACE, SubmissionRecord(
        submission=name, uid=submission["metadata"]["uid"], playground="pg", submitter="ada", phase="Evaluating",
        version=version))
    ctl.recorded_versions.add((NAMESPACE, name))


async def _scenario(api_server) -> tuple[dict[str, int], dict]:
    before = _controller(api_server)
    await before.kube.create(k8s.PLAYGROUNDS, NAMESPACE, _playground())
    for name in ("a", "b", "c", "d"):
        await before.kube.create(k8s.SUBMISSIONS, NAMESPACE, _submission(name))
    versions: dict[str, int] = {}
    for name in ("a", "b"):
        versions[name] = await _assign_version(before, await before.kube.get(k8s.PLAYGROUNDS, NAMESPACE, "pg"), name)
        await _record(before, name, versions[name])
    # "c" gets a version, then the operator dies before writing it to c's status.
    versions["c"] = await _assign_version(before, await before.kube.get(k8s.PLAYGROUNDS, NAMESPACE, "pg"), "c")

    after = _controller(api_server)  # a fresh process: knows nothing of what was recorded
    for name in ("d", "c"):  # the restarted operator happens to admit "d" first
        versions[name] = await _assign_version(after, await after.kube.get(k8s.PLAYGROUNDS, NAMESPACE, "pg"), name)
        await _record(after, name, versions[name])
    versions["e"] = await _assign_version(after, await after.kube.get(k8s.PLAYGROUNDS, NAMESPACE, "pg"), "e")
    status = (await after.kube.get(k8s.PLAYGROUNDS, NAMESPACE, "pg"))["status"]
    return versions, status


def test_version_handed_out_before_a_crash_is_reused_whatever_is_admitted_first(podium_api_server, object_store):
    versions, status = asyncio.run(_scenario(podium_api_server))
    assert versions == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert status["nextVersion"] == 6
    # Recorded versions are dropped from the pending map; only the unrecorded one ("e") is left.
    assert status["pendingVersions"] == {"e": 5}
