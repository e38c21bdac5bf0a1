"""The operator reading the score step's result file: a bad one fails the Submission once, with a message.

Before, a result the operator could not parse raised from ``_advance`` and the Submission was retried
forever; a non-finite number in it went on into the status. ``_advance`` runs here against a stand-in
controller whose score Job has succeeded, with the object store answering what the test says.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

from podium import storage
from podium.api.playground import PlaygroundSpec
from podium.api.submission import SubmissionSpec
from podium.errors import NotFound, StorageError
from podium.evaluation.wire import MAX_RESULT_BYTES
from podium_operator.flows import submission as flow
from podium_operator.settings import OperatorConfig

PLAYGROUND = {"metadata": {"name": "pg", "namespace": "ns", "uid": "pg-uid"}, "status": {}}
PG = PlaygroundSpec.model_validate({
    "task": "classification", "holdout": {"features": "s3://b/f.csv", "labels": "s3://b/l.csv"},
    "classLabels": ["a", "b"], "primaryMetric": "accuracy",
})
SPEC = SubmissionSpec.model_validate({"playground": "pg", "predictions": {"uri": "s3://b/p.npz"}})
SUCCEEDED = {"metadata": {"name": "s-score", "ownerReferences": [{"uid": "u"}]}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}


class Kube:
    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any]:
        return SUCCEEDED

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        return None


class Controller:
    """What ``_advance`` uses of the real one before it records an outcome."""

    def __init__(self) -> None:
        self.kube = Kube()
        self.config = OperatorConfig.from_env()


def _submission() -> dict[str, Any]:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission",
            "metadata": {"name": "s", "namespace": "ns", "generation": 1, "uid": "u"},
            "spec": {"playground": "pg", "predictions": {"uri": "s3://b/p.npz"}},
            "status": {"phase": "Evaluating", "version": 1, "timings": {"submittedAt": "2026-01-01T00:00:00Z"}}}


def _arguments(ctl: Controller) -> list[Any]:
    """``_advance``'s arguments by name (the flow's other arguments change with other work)."""
    available: dict[str, Any] = {"ctl": ctl, "submission": _submission(), "spec": SPEC, "playground": PLAYGROUND,
                                 "pg": PG}
    names = list(inspect.signature(flow._advance).parameters)
    if "record" in names:
        from podium_operator.reconcile.records import SubmissionRecord

        available["record"] = SubmissionRecord(submission="s", uid="u", playground="pg", submitter="ada",
                                               phase="Evaluating", version=1)
    return [available[name] for name in names]


async def _advance_with(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[dict[str, Any]]:
    """Run ``_advance`` with the object store answering ``answer``; the outcomes it recorded."""
    def read_bytes(uri: str, *, limit: int | None = None) -> bytes:
        if isinstance(answer, Exception):
            raise answer
        assert limit == MAX_RESULT_BYTES
        return answer

    finished: list[dict[str, Any]] = []

    async def finish(ctl: Any, submission: dict[str, Any], **outcome: Any) -> None:
        finished.append(outcome)

    monkeypatch.setattr(storage, "read_bytes", read_bytes)
    monkeypatch.setattr(flow, "_finish", finish)
    assert await flow._advance(*_arguments(Controller())) is True
    return finished


async def test_a_good_result_is_published(monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.dumps({"public": {"accuracy": 0.75}, "metadata": {"x": 1, "big": 2**70}}).encode()
    (outcome,) = await _advance_with(monkeypatch, data)
    assert outcome["phase"] == "Evaluated" and outcome["extra"]["score"] == 0.75
    assert outcome["extra"]["metadata"] == {"x": 1}  # 2**70 fits no status number (int64): dropped


@pytest.mark.parametrize("data", [
    b"not json at all",
    b'{"public": {"accuracy": NaN}}',
    b'{"public": {"accuracy": 0.5}, "metadata": {"loss": NaN, "gain": Infinity}}',
    b'{"public": {"accuracy": 0.5}, "metadata": {"loss": 1e999}}',
    b'{"public": "a string", "rows": {"all": "many"}}',
    b"[" * 100_000 + b"]" * 100_000,
], ids=["garbage", "nan metric", "nan metadata", "overflow", "wrong shape", "deep"])
async def test_an_unreadable_result_fails_the_submission_once(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    (outcome,) = await _advance_with(monkeypatch, data)
    assert outcome["phase"] == "Failed" and outcome["reason"] == "InvalidResult", outcome
    assert "score" in outcome["message"] and "Fix:" in outcome["message"]
    assert not outcome.get("extra"), "nothing from a bad result file reaches the status"
    json.dumps(outcome, allow_nan=False)


async def test_an_oversized_result_fails_the_submission(monkeypatch: pytest.MonkeyPatch) -> None:
    too_large = StorageError(f"s3://podium/r.json is larger than {MAX_RESULT_BYTES} bytes", field="uri",
                             hint="check what wrote it")
    (outcome,) = await _advance_with(monkeypatch, too_large)
    assert outcome["phase"] == "Failed" and str(MAX_RESULT_BYTES) in outcome["message"]


@pytest.mark.parametrize("error", [
    StorageError("cannot reach the object store at http://s3 for s3://b/r.json", field="endpoint", hint="retry"),
    NotFound("s3://b/r.json does not exist", field="uri", hint="check"),
], ids=["object store down", "not there yet"])
async def test_a_transient_storage_error_is_retried(monkeypatch: pytest.MonkeyPatch, error: StorageError) -> None:
    with pytest.raises(StorageError):
        await _advance_with(monkeypatch, error)


class KubeWithStaleJob:
    """A cluster where the score Job of an earlier Submission named ``s`` (uid ``old``) is still there."""

    def __init__(self) -> None:
        self.jobs = {"s-score": {**SUCCEEDED, "metadata": {"name": "s-score", "ownerReferences": [{"uid": "old"}]}}}
        self.deleted: list[str] = []
        self.created: list[dict[str, Any]] = []

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get(name)

    async def delete(self, resource: Any, namespace: str, name: str) -> bool:
        self.deleted.append(name)
        return self.jobs.pop(name, None) is not None

    async def create_if_absent(self, resource: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        return self.jobs.setdefault(body["metadata"]["name"], body)

    async def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return []


async def test_a_job_left_by_an_earlier_submission_of_the_same_name_is_never_taken_as_its_own(monkeypatch):
    ctl = Controller()
    ctl.kube = KubeWithStaleJob()  # type: ignore[assignment]
    finished: list[dict[str, Any]] = []

    async def finish(ctl: Any, submission: dict[str, Any], **outcome: Any) -> None:
        finished.append(outcome)

    async def patch_status(*args: Any) -> None:
        return None

    monkeypatch.setattr(flow, "_finish", finish)
    monkeypatch.setattr(storage, "presign", lambda uri, **_: f"https://signed/{uri}")
    ctl.patch_status = patch_status  # type: ignore[attr-defined]
    assert await flow._advance(*_arguments(ctl)) is False  # its own score Job was created, not the old one read
    assert ctl.kube.deleted == ["s-score"] and finished == []
    (job,) = ctl.kube.created
    assert [ref["uid"] for ref in job["metadata"]["ownerReferences"]] == ["u"]
