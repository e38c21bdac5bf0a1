"""The InferenceService builder for both KServe backends: valid against the real CRD, stable under webhook rewrites."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium_operator.local.apiserver.objects import merge_patch as merge  # the emulator's RFC 7386 merge
from podium_operator.reconcile import inference_service as isvc
from tests.kserve import problems

OWNER = {"apiVersion": "podium.dev/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "iris", "namespace": "team-a", "uid": "u-1"}}
V1 = isvc.Artifact("sub-a", 1, "s3://podium/uploads/team-a/iris/alice/a.tar.gz", "classification", ("x", "y"))
V2 = isvc.Artifact("sub-b", 2, "s3://podium/uploads/team-a/iris/bob/b.tar.gz", "classification", ("x", "y"))
MODES = ("Standard", "Knative")


def runtime(mode: str) -> isvc.Runtime:
    return isvc.Runtime(mode=mode, replicas=2, cpu="500m", memory="1Gi")  # type: ignore[arg-type]


ROUTINGS = [isvc.Routing(V1), isvc.Routing(V1, V2, 10), isvc.Routing(V1, V2, 0, mirror=True),
            isvc.Routing(V1, V2, 50), isvc.Routing(V2)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("routing", ROUTINGS)
def test_every_manifest_validates_against_the_kserve_crd(mode: str, routing: isvc.Routing) -> None:
    manifest = isvc.build(OWNER, routing, runtime(mode))
    assert problems(manifest) == []
    assert manifest["metadata"]["annotations"][isvc.MODE_ANNOTATION] == mode
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "podium"} and model["runtime"] == "podium"
    assert not {"sklearn", "pytorch", "tensorflow", "onnx"} & set(manifest["spec"]["predictor"])


def test_knative_canary_is_the_predictor_model_with_a_traffic_percent() -> None:
    manifest = isvc.build(OWNER, isvc.Routing(V1, V2, 10), runtime("Knative"))
    predictor = manifest["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == V2.storage_uri and predictor["canaryTrafficPercent"] == 10
    assert "canary" not in manifest["spec"]
    promoted = isvc.build(OWNER, isvc.Routing(V2), runtime("Knative"))
    patch = isvc.update_patch(manifest, promoted)
    assert patch is not None and patch["spec"]["predictor"]["canaryTrafficPercent"] is None  # removed: promote


def test_standard_canary_is_a_canary_entry_and_promotion_renames_the_predictor() -> None:
    manifest = isvc.build(OWNER, isvc.Routing(V1, V2, 10), runtime("Standard"))
    spec = manifest["spec"]
    assert spec["predictor"]["name"] == V1.revision and spec["predictor"]["model"]["storageUri"] == V1.storage_uri
    assert [c["trafficPercent"] for c in spec["canary"]] == [10]
    assert spec["canary"][0]["predictor"]["name"] == V2.revision
    assert "canaryTrafficPercent" not in spec["predictor"]
    promoted = isvc.build(OWNER, isvc.Routing(V2), runtime("Standard"))
    patch = isvc.update_patch(manifest, promoted)
    assert patch is not None and patch["spec"]["canary"] is None
    assert patch["spec"]["predictor"]["name"] == V2.revision  # the canary's name: KServe keeps its pods
    rolled_back = isvc.update_patch(manifest, isvc.build(OWNER, isvc.Routing(V1), runtime("Standard")))
    assert rolled_back is not None and rolled_back["spec"]["canary"] is None
    assert rolled_back["spec"]["predictor"]["name"] == V1.revision


def test_mirror_annotation_only_with_a_candidate() -> None:
    shadow = isvc.build(OWNER, isvc.Routing(V1, V2, 0, mirror=True), runtime("Standard"))
    assert shadow["metadata"]["annotations"][isvc.MIRROR_ANNOTATION] == "true"
    plain = isvc.build(OWNER, isvc.Routing(V1, None, 0, mirror=True), runtime("Standard"))
    assert isvc.MIRROR_ANNOTATION not in plain["metadata"]["annotations"]
    patch = isvc.update_patch(shadow, isvc.build(OWNER, isvc.Routing(V1), runtime("Standard")))
    assert patch is not None and patch["metadata"]["annotations"][isvc.MIRROR_ANNOTATION] is None


def webhook_rewrite(manifest: dict[str, Any]) -> dict[str, Any]:
    """What KServe's mutating webhook and the API server add: defaults, annotations, status, bookkeeping."""
    out = copy.deepcopy(manifest)
    meta = out["metadata"]
    meta.update(uid="isvc-1", resourceVersion="42", generation=3, creationTimestamp="2026-12-01T00:00:00Z")
    meta["annotations"]["serving.kserve.io/autoscalerClass"] = "hpa"
    meta["labels"]["serving.kserve.io/inferenceservice"] = meta["name"]
    predictor = out["spec"]["predictor"]
    predictor["model"]["name"] = ""  # the SDK's sanitize_for_serialization writes an empty name
    predictor.setdefault("maxReplicas", 0)
    predictor["model"]["resources"]["limits"]["ephemeral-storage"] = "1Gi"
    out["status"] = {"observedGeneration": 3, "url": "http://iris.team-a.example.com"}
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("routing", ROUTINGS)
def test_a_webhook_rewrite_causes_no_update(mode: str, routing: isvc.Routing) -> None:
    desired = isvc.build(OWNER, routing, runtime(mode))
    assert isvc.update_patch(webhook_rewrite(desired), desired) is None


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODES), st.sampled_from(ROUTINGS), st.sampled_from(ROUTINGS))
def test_the_patch_reaches_the_desired_owned_fields(mode: str, before: isvc.Routing, after: isvc.Routing) -> None:
    observed = webhook_rewrite(isvc.build(OWNER, before, runtime(mode)))
    desired = isvc.build(OWNER, after, runtime(mode))
    patch = isvc.update_patch(observed, desired)
    merged = merge(observed, patch) if patch else observed
    assert isvc.owned_fields(merged) == isvc.owned_fields(desired)
    assert isvc.update_patch(merged, desired) is None  # converged: no endless updates


def test_observe_reads_both_backends() -> None:
    routing = isvc.Routing(V1, V2, 10)
    knative = {"metadata": {"generation": 2}, "status": {
        "observedGeneration": 2, "url": "http://iris", "conditions": [{"type": "Ready", "status": "True"}],
        "components": {"predictor": {"latestCreatedRevision": "iris-predictor-00002",
                                     "latestReadyRevision": "iris-predictor-00002",
                                     "traffic": [{"revisionName": "iris-predictor-00002", "latestRevision": True,
                                                  "percent": 10},
                                                 {"revisionName": "iris-predictor-00001", "latestRevision": False,
                                                  "percent": 90, "tag": "prev"}]}}}}
    seen = isvc.observe(knative, routing, "Knative")
    assert (seen.ready, seen.candidate_ready, seen.candidate_percent, seen.url) == (True, True, 10, "http://iris")
    standard = {"metadata": {"generation": 5}, "status": {
        "observedGeneration": 4, "conditions": [{"type": "Ready", "status": "True"}],
        "canaryStatuses": [{"name": V2.revision, "ready": True, "trafficPercent": 10}]}}
    stale = isvc.observe(standard, routing, "Standard")
    assert not stale.ready and not stale.candidate_ready  # KServe has not seen generation 5 yet
    standard["status"]["observedGeneration"] = 5
    assert isvc.observe(standard, routing, "Standard").candidate_percent == 10
    failing = {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "canaryStatuses": [
        {"name": V2.revision, "ready": False, "trafficPercent": 0,
         "modelStatus": {"transitionStatus": "BlockedByFailedLoad",
                         "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "bad pickle"}}}]}}
    assert isvc.observe(failing, routing, "Standard").failure == "ModelLoadFailed: bad pickle"
    assert not isvc.observe(None, routing, "Standard").exists


def knative_status(generation: int, created: str, ready: str) -> dict[str, Any]:
    return {"observedGeneration": generation, "conditions": [{"type": "Ready", "status": "True"}],
            "components": {"predictor": {"latestCreatedRevision": created, "latestReadyRevision": ready}}}


def test_knative_rollback_keeps_traffic_on_the_stable_revision_until_the_restored_one_is_ready() -> None:
    canary = webhook_rewrite(isvc.build(OWNER, isvc.Routing(V1, V2, 20), runtime("Knative")))
    canary["status"] = knative_status(3, "iris-predictor-00002", "iris-predictor-00002")
    restore = isvc.build(OWNER, isvc.Routing(V1), runtime("Knative"))
    pinned = isvc.settle(canary, restore, "Knative")
    # removing the field now would route 100% to the latest ready revision: the rolled-back candidate's
    assert pinned["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert pinned["spec"]["predictor"]["model"]["storageUri"] == V1.storage_uri
    restoring = merge(canary, isvc.update_patch(canary, pinned))
    restoring["metadata"]["generation"] = 4
    restoring["status"] = knative_status(4, "iris-predictor-00003", "iris-predictor-00002")
    assert isvc.settle(restoring, restore, "Knative")["spec"]["predictor"]["canaryTrafficPercent"] == 0
    restoring["status"] = knative_status(4, "iris-predictor-00003", "iris-predictor-00003")
    assert "canaryTrafficPercent" not in isvc.settle(restoring, restore, "Knative")["spec"]["predictor"]


def test_knative_promotion_and_standard_mode_are_not_pinned() -> None:
    canary = webhook_rewrite(isvc.build(OWNER, isvc.Routing(V1, V2, 60), runtime("Knative")))
    canary["status"] = knative_status(3, "iris-predictor-00002", "iris-predictor-00002")
    promoted = isvc.build(OWNER, isvc.Routing(V2), runtime("Knative"))
    assert isvc.settle(canary, promoted, "Knative") == promoted
    standard = isvc.build(OWNER, isvc.Routing(V1), runtime("Standard"))
    assert isvc.settle(canary, standard, "Standard") == standard
    first = isvc.build(OWNER, isvc.Routing(V1), runtime("Knative"))
    assert isvc.settle(None, first, "Knative") == first
