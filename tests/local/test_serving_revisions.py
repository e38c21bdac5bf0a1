"""Local serving: revisions, traffic split and status as KServe makes them (pure; both deployment modes)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from podium_operator.local.serving.revisions import (
    FAILED,
    READY,
    STARTING,
    Memory,
    Plan,
    State,
    merge_patch,
    plan,
)
from podium_operator.local.serving.router import SmoothWeighted
from podium_operator.local.serving.vendor_crds import kserve_crds

URL = "http://127.0.0.1:9"
NOW = "2026-01-01T00:00:00Z"
STATUS_SCHEMA = kserve_crds()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def model(uri: str, submission: str = "s") -> dict[str, Any]:
    return {"modelFormat": {"name": "podium"}, "runtime": "podium", "protocolVersion": "v1", "storageUri": uri,
            "env": [{"name": "PODIUM_SUBMISSION", "value": submission}]}


def isvc(mode: str, predictor: dict[str, Any], canary: list[dict[str, Any]] | None = None,
         mirror: bool = False, generation: int = 1) -> dict[str, Any]:
    annotations = {"serving.kserve.io/deploymentMode": mode, **({"podium.dev/mirror": "true"} if mirror else {})}
    spec: dict[str, Any] = {"predictor": predictor, **({"canary": canary} if canary else {})}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "default", "generation": generation, "annotations": annotations},
            "spec": spec}


def step(obj: dict[str, Any], states: dict[str, State], memory: Memory) -> Plan:
    """Plan, then store the status on the object (as the controller writes it); valid per KServe's schema."""
    result = plan(obj, states, memory, url=URL, now=NOW)
    obj["status"] = result.status
    jsonschema.validate(obj["status"], STATUS_SCHEMA)
    return result


def ready_all(result: Plan) -> dict[str, State]:
    return {i.id: State(READY, url=f"http://127.0.0.1:{n + 10}") for n, i in enumerate(result.instances)}


def by_revision(result: Plan) -> dict[str, int]:
    return {result.revisions[i]: p for i, p in result.weights.items()}


def conditions(result: Plan) -> dict[str, str]:
    return {c["type"]: c["status"] for c in result.status["conditions"]}


def test_knative_canary_promote_and_rollback() -> None:
    obj = isvc("Knative", {"minReplicas": 1, "model": model("s3://b/v1")})
    first = step(obj, {}, Memory())
    assert [i.revision for i in first.instances] == ["iris-predictor-00001"]
    assert first.weights == {} and conditions(first)["Ready"] == "Unknown"
    states = ready_all(first)
    served = step(obj, states, first.memory)
    predictor = served.status["components"]["predictor"]
    assert predictor["latestRolledoutRevision"] == "iris-predictor-00001"
    assert by_revision(served) == {"iris-predictor-00001": 100} and conditions(served)["Ready"] == "True"
    # A canary: a new revision, no traffic until it is ready; the old one keeps 100%.
    obj["spec"]["predictor"] = {"minReplicas": 1, "canaryTrafficPercent": 10, "model": model("s3://b/v2", "t")}
    canary = step(obj, states, served.memory)
    assert [i.revision for i in canary.instances] == ["iris-predictor-00001", "iris-predictor-00002"]
    assert by_revision(canary) == {"iris-predictor-00001": 100}
    assert canary.status["components"]["predictor"]["latestCreatedRevision"] == "iris-predictor-00002"
    states = {**states, **ready_all(canary)}
    split = step(obj, states, canary.memory)
    assert by_revision(split) == {"iris-predictor-00002": 10, "iris-predictor-00001": 90}
    traffic = split.status["components"]["predictor"]["traffic"]
    assert [(t["revisionName"], t["percent"], t.get("tag")) for t in traffic] == [
        ("iris-predictor-00002", 10, None), ("iris-predictor-00001", 90, "prev")]
    assert split.status["components"]["predictor"]["latestRolledoutRevision"] == "iris-predictor-00001"
    # Changing the percent makes no new revision.
    obj["spec"]["predictor"]["canaryTrafficPercent"] = 50
    half = step(obj, states, split.memory)
    assert len(half.memory.revisions) == 2 and by_revision(half)["iris-predictor-00002"] == 50
    # Roll back: 0% to the latest, all to prev, both still running.
    obj["spec"]["predictor"]["canaryTrafficPercent"] = 0
    back = step(obj, states, half.memory)
    assert by_revision(back) == {"iris-predictor-00001": 100}
    assert {i.revision for i in back.instances} == {"iris-predictor-00001", "iris-predictor-00002"}
    # Promote: remove the field.
    del obj["spec"]["predictor"]["canaryTrafficPercent"]
    promoted = step(obj, states, back.memory)
    predictor = promoted.status["components"]["predictor"]
    assert by_revision(promoted) == {"iris-predictor-00002": 100}
    assert predictor["latestRolledoutRevision"] == "iris-predictor-00002"
    assert predictor["previousRolledoutRevision"] == "iris-predictor-00001"
    assert [i.revision for i in promoted.instances] == ["iris-predictor-00002"]


def test_knative_failed_revision_keeps_old_traffic() -> None:
    obj = isvc("Knative", {"model": model("s3://b/v1")})
    first = step(obj, {}, Memory())
    states = ready_all(first)
    served = step(obj, states, first.memory)
    obj["spec"]["predictor"] = {"canaryTrafficPercent": 10, "model": model("s3://b/bad")}
    canary = step(obj, states, served.memory)
    bad = canary.instances[-1]
    states[bad.id] = State(FAILED, message="cannot load the model: boom", exit_code=3)
    failed = step(obj, states, canary.memory)
    assert by_revision(failed) == {"iris-predictor-00001": 100}
    info = failed.status["modelStatus"]["lastFailureInfo"]
    assert info["reason"] == "ModelLoadFailed" and "boom" in info["message"] and info["exitCode"] == 3
    assert conditions(failed)["PredictorReady"] == "False"
    assert conditions(failed)["LatestDeploymentReady"] == "False"


def test_standard_canary_gets_traffic_once_ready_and_rename_promotion_keeps_its_process() -> None:
    stable = {"name": "v1", "minReplicas": 2, "model": model("s3://b/v1")}
    obj = isvc("Standard", stable)
    first = step(obj, {}, Memory())
    states = ready_all(first)
    served = step(obj, states, first.memory)
    assert by_revision(served) == {"v1": 100} and conditions(served)["Ready"] == "True"
    assert "canaryStatuses" not in served.status
    obj["spec"]["canary"] = [{"trafficPercent": 25, "predictor": {"name": "v2", "model": model("s3://b/v2", "t")}}]
    canary = step(obj, states, served.memory)
    assert by_revision(canary) == {"v1": 100}
    assert [{k: c[k] for k in ("name", "ready", "trafficPercent")} for c in canary.status["canaryStatuses"]] == [
        {"name": "v2", "ready": False, "trafficPercent": 25}]
    assert conditions(canary)["CanaryPredictorReady"] == "False" and conditions(canary)["Ready"] == "True"
    states = {**states, **ready_all(canary)}
    split = step(obj, states, canary.memory)
    assert by_revision(split) == {"v2": 25, "v1": 75} and conditions(split)["CanaryPredictorReady"] == "True"
    canary_process = next(i.id for i in split.instances if i.revision == "v2")
    # Promote by rename: the canary's process becomes the stable one (no restart).
    obj["spec"] = {"predictor": {"name": "v2", "minReplicas": 2, "model": model("s3://b/v2", "t")}}
    promoted = step(obj, states, split.memory)
    assert [i.id for i in promoted.instances] == [canary_process]
    assert promoted.weights == {canary_process: 100} and "canaryStatuses" not in promoted.status


def test_standard_rolling_update_serves_the_old_model_until_the_new_one_is_ready() -> None:
    obj = isvc("Standard", {"model": model("s3://b/v1")})
    first = step(obj, {}, Memory())
    states = ready_all(first)
    served = step(obj, states, first.memory)
    old = first.instances[0]
    obj["spec"]["predictor"] = {"model": model("s3://b/v2")}
    rolling = step(obj, states, served.memory)
    assert rolling.weights == {old.id: 100} and len(rolling.instances) == 2
    new = rolling.instances[0]
    states[new.id] = State(READY, url="http://127.0.0.1:99")
    done = step(obj, states, rolling.memory)
    assert done.weights == {new.id: 100} and [i.id for i in done.instances] == [new.id]


def test_mirroring_targets_the_shadow_in_both_modes() -> None:
    obj = isvc("Standard", {"name": "v1", "model": model("s3://b/v1")}, mirror=True,
               canary=[{"trafficPercent": 0, "predictor": {"name": "v2", "model": model("s3://b/v2", "cand")}}])
    first = step(obj, {}, Memory())
    result = step(obj, ready_all(first), first.memory)
    assert result.mirror is not None and result.shadow_submission == "cand"
    assert by_revision(result) == {"v1": 100}
    kn = isvc("Knative", {"model": model("s3://b/v1")}, mirror=True)
    first = step(kn, {}, Memory())
    states = ready_all(first)
    served = step(kn, states, first.memory)
    kn["spec"]["predictor"] = {"canaryTrafficPercent": 0, "model": model("s3://b/v2", "cand")}
    shadow = step(kn, states, served.memory)
    states.update(ready_all(shadow))
    shadow = step(kn, states, shadow.memory)
    latest = next(i.id for i in shadow.instances if i.revision == "iris-predictor-00002")
    assert shadow.mirror == (first.instances[0].id, latest)
    assert by_revision(shadow) == {"iris-predictor-00001": 100}


def test_status_is_stable_when_nothing_changed() -> None:
    obj = isvc("Knative", {"model": model("s3://b/v1")})
    first = step(obj, {}, Memory())
    states = ready_all(first)
    second = step(obj, states, first.memory)
    later = plan(obj, states, second.memory, url=URL, now="2027-01-01T00:00:00Z")
    assert merge_patch(obj["status"], later.status) == {}


@given(st.lists(st.tuples(st.integers(0, 100), st.booleans()), min_size=0, max_size=3), st.booleans())
def test_standard_split_invariants(entries: list[tuple[int, bool]], stable_ready: bool) -> None:
    """Percents sum to 100 (when the stable is ready), a canary gets 0 until ready, the stable the rest."""
    total = 0
    canary = []
    for n, (percent, _) in enumerate(entries):
        percent = min(percent, 100 - total)
        total += percent
        canary.append({"trafficPercent": percent, "predictor": {"name": f"c{n}", "model": model(f"s3://b/c{n}")}})
    obj = isvc("Standard", {"name": "s", "model": model("s3://b/s")}, canary=canary)
    first = plan(obj, {}, Memory(), url=URL, now=NOW)
    ids = {first.revisions[i.id]: i.id for i in first.instances}
    states = {ids[f"c{n}"]: State(READY if ready else STARTING, url="http://x") for n, (_, ready) in enumerate(entries)}
    if stable_ready:
        states[ids["s"]] = State(READY, url="http://x")
    result = plan(obj, states, Memory(), url=URL, now=NOW)
    weights = by_revision(result)
    for n, (_, ready) in enumerate(entries):
        expected = canary[n]["trafficPercent"] if ready else 0
        assert weights.get(f"c{n}", 0) == expected
    if stable_ready:
        assert sum(weights.values()) == 100
        assert weights.get("s", 0) == 100 - sum(weights.get(f"c{n}", 0) for n in range(len(entries)))
    assert all(states.get(i, State()).phase == READY for i in result.weights)


@given(st.integers(0, 100), st.booleans(), st.booleans())
def test_knative_split_invariants(percent: int, canary_ready: bool, rolled_out: bool) -> None:
    obj = isvc("Knative", {"model": model("s3://b/v1")})
    first = step(obj, {}, Memory())
    states = ready_all(first)
    memory = step(obj, states, first.memory).memory if rolled_out else first.memory
    if not rolled_out:
        obj.pop("status")
    obj = copy.deepcopy(obj)
    obj["spec"]["predictor"] = {"canaryTrafficPercent": percent, "model": model("s3://b/v2")}
    result = plan(obj, states, memory, url=URL, now=NOW)
    if canary_ready:
        states = {**states, result.instances[-1].id: State(READY, url="http://x")}
        result = plan(obj, states, result.memory, url=URL, now=NOW)
    weights = by_revision(result)
    assert sum(weights.values()) == 100
    traffic = result.status["components"]["predictor"]["traffic"]
    assert sum(t["percent"] for t in traffic) == 100
    if not canary_ready:
        assert weights == {"iris-predictor-00001": 100}
    elif rolled_out:
        assert weights.get("iris-predictor-00002", 0) == percent
    else:  # no rolled-out revision: the field is ignored, 100% latest
        assert weights == {"iris-predictor-00002": 100}


@given(st.dictionaries(st.sampled_from("abcd"), st.integers(1, 100), min_size=1), st.integers(1, 5))
def test_smooth_weighted_round_robin_is_exact(weights: dict[str, int], rounds: int) -> None:
    split = SmoothWeighted(weights)
    total = sum(weights.values())
    picks = [split.pick() for _ in range(total * rounds)]
    assert {k: picks.count(k) for k in weights} == {k: w * rounds for k, w in weights.items()}
