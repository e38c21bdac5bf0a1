"""Pure parts of the emulator's kubectl parity: the builtins' printers (as kube-apiserver's), log cutting, Secret
folding and warning headers (the HTTP behaviour is in test_kubectl.py)."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from podium_operator.local.apiserver import builtins, logs, printers, query

NOW = datetime.datetime(2026, 1, 1, 0, 10, tzinfo=datetime.UTC)
CREATED = "2026-01-01T00:00:00Z"


def pod(*statuses: dict[str, Any], phase: str = "Running", init: list[dict[str, Any]] | None = None,
        **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": s["name"]} for s in statuses]}
    status: dict[str, Any] = {"phase": phase, "containerStatuses": list(statuses)}
    if init is not None:
        spec["initContainers"] = [{"name": s["name"]} for s in init]
        status["initContainerStatuses"] = init
    return {"metadata": {"name": "p", "creationTimestamp": CREATED, **meta}, "spec": spec, "status": status}


def container(name: str = "main", restarts: int = 0, ready: bool = False, **state: Any) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": state}


def pod_cells(obj: dict[str, Any]) -> list[Any]:
    return printers.PODS.cells(obj, NOW)[:5]


def test_pod_status_is_worded_as_kubectl_shows_it() -> None:
    running = container(ready=True, running={"startedAt": CREATED})
    assert pod_cells(pod(running)) == ["p", "1/1", "Running", "0", "10m"]
    assert pod_cells(pod(container(waiting={"reason": "ContainerCreating"}), phase="Pending"))[2] == "ContainerCreating"
    assert pod_cells(pod(container(terminated={"exitCode": 0, "reason": "Completed"}), phase="Succeeded"))[1:3] == [
        "0/1", "Completed"]
    assert pod_cells(pod(container(terminated={"exitCode": 137, "signal": 9}), phase="Failed"))[2] == "Signal:9"
    assert pod_cells(pod(container(terminated={"exitCode": 2}), phase="Failed"))[2] == "ExitCode:2"
    one_done = pod(running, container("side", ready=True, running={}),
                   container("done", terminated={"exitCode": 0, "reason": "Completed"}))
    assert pod_cells(one_done)[1:3] == ["2/3", "NotReady"]  # some still run, and the pod is not Ready
    one_done["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert pod_cells(one_done)[2] == "Running"
    restarted = {**running, "restartCount": 2, "lastState": {"terminated": {"finishedAt": "2026-01-01T00:09:55Z"}}}
    assert pod_cells(pod(restarted))[3] == "2 (5s ago)"
    assert pod_cells(pod(container(), init=[container("setup", running={})], phase="Pending"))[2] == "Init:0/1"
    assert pod_cells(pod(container(), init=[container("setup", terminated={"exitCode": 1, "reason": "Error"})],
                         phase="Failed"))[2] == "Init:Error"
    assert pod_cells(pod(running, deletionTimestamp=CREATED))[2] == "Terminating"
    assert printers.PODS.conditions(pod(running, phase="Succeeded"))[0]["reason"] == "Succeeded"


def test_job_status_completions_and_duration() -> None:
    def cells(spec: dict[str, Any], status: dict[str, Any], **meta: Any) -> list[Any]:
        job = {"metadata": {"name": "j", "creationTimestamp": CREATED, **meta}, "spec": spec, "status": status}
        return printers.JOBS.cells(job, NOW)[1:4]

    assert cells({"completions": 1}, {}) == ["Running", "0/1", ""]
    assert cells({"completions": 1}, {"startTime": CREATED}) == ["Running", "0/1", "10m"]
    failed = {"startTime": CREATED, "completionTime": "2026-01-01T00:00:42Z", "failed": 1,
              "conditions": [{"type": "Failed", "status": "True"}]}
    assert cells({"completions": 1}, failed) == ["Failed", "0/1", "42s"]
    assert cells({"parallelism": 3}, {"conditions": [{"type": "Suspended", "status": "True"}]})[:2] == [
        "Suspended", "0/1 of 3"]
    assert cells({}, {}, deletionTimestamp=CREATED)[0] == "Terminating"


def test_event_rows_take_the_newest_time_and_count() -> None:
    event = {"metadata": {"name": "e"}, "type": "Warning", "reason": "Failed", "message": " boom\n",
             "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{main}"},
             "firstTimestamp": CREATED, "lastTimestamp": "2026-01-01T00:09:00Z", "count": 3,
             "source": {"component": "kubelet", "host": "podium-local"}}
    assert printers.EVENTS.cells(event, NOW) == ["60s", "Warning", "Failed", "pod/p", "spec.containers{main}",
                                                 "kubelet, podium-local", "boom", "10m", 3, "e"]
    series = {"metadata": {"name": "s"}, "eventTime": "2026-01-01T00:00:00.000000Z", "involvedObject": {"kind": "Node"},
              "series": {"count": 7, "lastObservedTime": "2026-01-01T00:09:30.000000Z"}, "reportingController": "x"}
    cells = printers.EVENTS.cells(series, NOW)
    assert (cells[0], cells[3], cells[5], cells[7], cells[8]) == ("30s", "node", "x", "10m", 7)
    assert printers.EVENTS.cells({"metadata": {"name": "n"}}, NOW)[0] == "<unknown>"


lines = st.lists(st.binary(max_size=8).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=12)


@given(lines, st.booleans(), st.integers(0, 15), st.one_of(st.none(), st.integers(1, 60)))
def test_tail_lines_and_limit_bytes_cut_as_the_kubelet_does(content: list[bytes], unterminated: bool, tail: int,
                                                            limit: int | None) -> None:
    text = b"".join(content) + (b"partial" if unterminated else b"")
    every = text.splitlines(keepends=True)
    assert logs._cut(text, None, None) == text
    kept = logs._cut(text, tail, None)
    assert kept == (b"".join(every[-tail:]) if tail else b"") and text.endswith(kept)
    assert logs._cut(text, tail, limit) == kept[:limit]


secret_values = st.dictionaries(st.from_regex(r"[a-z][a-z0-9._-]{0,8}", fullmatch=True), st.text(max_size=12),
                                max_size=4)


@given(secret_values, secret_values)
def test_string_data_wins_over_data_and_is_never_kept(data: dict[str, str], string_data: dict[str, str]) -> None:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    folded = builtins.fold_string_data({"metadata": {"name": "s"}, "data": encoded, "stringData": string_data})
    decoded = {key: base64.b64decode(value).decode() for key, value in (folded.get("data") or {}).items()}
    assert decoded == {**data, **string_data} and "stringData" not in folded and folded["type"] == "Opaque"


def test_warning_header_quotes_as_rfc_7234() -> None:
    assert query.warning_header([]) is None
    assert query.warning_header(['unknown field "spec.a"', "back\\slash"]) == \
        '299 - "unknown field \\"spec.a\\"", 299 - "back\\\\slash"'


def test_jsonpath_filters_on_booleans_and_numbers_as_kserves_printer_columns_do():
    from podium_operator.local.apiserver.tables import jsonpath

    traffic = {"status": {"components": {"predictor": {"traffic": [
        {"revisionName": "iris-predictor-00001", "percent": 90, "tag": "prev", "latestRevision": False},
        {"revisionName": "iris-predictor-00002", "percent": 10, "latestRevision": True}]}}}}
    path = ".status.components.predictor.traffic[?(@.latestRevision==true)]"
    assert jsonpath(traffic, path + ".percent") == [10]
    assert jsonpath(traffic, ".status.components.predictor.traffic[?(@.tag=='prev')].revisionName") == [
        "iris-predictor-00001"]
    assert jsonpath(traffic, ".status.components.predictor.traffic[?(@.percent==90)].tag") == ["prev"]
    assert jsonpath({"items": [{"flag": "true"}]}, ".items[?(@.flag==true)]") == []  # text is not a boolean
