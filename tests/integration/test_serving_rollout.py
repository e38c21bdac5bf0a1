"""Rollouts through the real operator, the local serving controller, real kserve predictors and a real Prometheus.

Under continuous client load: a good candidate steps through the canary and is promoted, an erroring or a
slow one is rolled back, and no request fails because of the swap itself; a shadow never changes an answer.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from tests.helpers import wait_for
from tests.integration.holdouts import iris_split, open_iris_playground
from tests.load import Load, swap_failures

pytestmark = pytest.mark.slow

MDEP = ("podium.dev", "v1alpha1", "default", "modeldeployments")
FAST_ROLLOUT = {"steps": [20, 60], "stepIntervalSeconds": 3,
                "analysis": {"maxErrorRate": 0.05, "maxLatencyRatio": 3.0, "minRequests": 10}}


class FailsWhenServed(LogisticRegression):
    """Scores well on the holdout (one large batch), fails on the small requests a live service gets."""

    def predict(self, X):
        if len(X) < 8:
            raise RuntimeError("this model only works on batches of 8 rows or more")
        return super().predict(X)


class SlowWhenServed(LogisticRegression):
    def predict(self, X):
        if len(X) < 8:
            time.sleep(0.08)
        return super().predict(X)


@pytest.fixture
def served(cluster, custom_objects):
    return evaluated_models(custom_objects)


def evaluated_models(custom_objects):
    """An iris playground with four evaluated models: two good ones, one that errors and one that is slow live."""
    playground = open_iris_playground(custom_objects, "iris")[0]
    X_train, X_test, y_train, _ = iris_split()
    models = {"lr": LogisticRegression(max_iter=500), "tree": DecisionTreeClassifier(random_state=0),
              "broken": FailsWhenServed(max_iter=500), "slow": SlowWhenServed(max_iter=500)}
    for name, model in models.items():
        playground.submit_model(model.fit(X_train, y_train), name=name, example_data=X_train)
    done = {s["metadata"]["name"]: s["status"] for s in playground.wait_for(*models, timeout=300)}
    assert {name: status["phase"] for name, status in done.items()} == dict.fromkeys(models, "Evaluated")
    return playground, X_test


def deployment(mode: str, submission: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "podium.dev/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "iris"},
            "spec": {"playground": "iris", "submission": submission,
                     "runtime": {"deploymentMode": mode, "resources": {"cpu": "1", "memory": "1Gi"}},
                     "rollout": FAST_ROLLOUT, **spec}}


def status(custom_objects) -> dict[str, Any]:
    return custom_objects.get_namespaced_custom_object(*MDEP, "iris").get("status") or {}


def wait_phase(custom_objects, *phases: str, timeout: float = 120, stable: str | None = None) -> dict[str, Any]:
    """Until the status is of the current spec and in one of ``phases`` (serving ``stable``, if given)."""
    def reached() -> dict[str, Any] | None:
        obj = custom_objects.get_namespaced_custom_object(*MDEP, "iris")
        found = obj.get("status") or {}
        current = found.get("observedGeneration") == obj["metadata"]["generation"]
        serving = stable is None or (found.get("stable") or {}).get("submission") == stable
        return found if current and serving and found.get("phase") in phases else None

    try:
        return wait_for(reached, timeout=timeout, what=f"the ModelDeployment to be {' or '.join(phases)}")
    except AssertionError as error:
        raise AssertionError(f"{error}; its status now: {status(custom_objects)}") from None


def swap(custom_objects, submission: str) -> None:
    custom_objects.patch_namespaced_custom_object(*MDEP, "iris", {"spec": {"submission": submission}})


def body(X) -> dict[str, Any]:
    return {"instances": np.asarray(X, dtype=float)[:2].tolist()}


@pytest.mark.parametrize("mode", ["Standard", "Knative"])
def test_canary_promotes_a_good_model_and_rolls_back_a_broken_one_under_load(served, custom_objects, core, mode):
    _, X_test = served
    custom_objects.create_namespaced_custom_object(*MDEP, deployment(mode, "lr"))
    ready = wait_phase(custom_objects, "Ready")
    url = f"{ready['url']}/v1/models/iris:predict"
    with Load(url, body(X_test), clients=3, max_seconds=240) as load:
        wait_for(lambda: load.count() > 20, timeout=30, what="the first answers")
        swap(custom_objects, "tree")
        promoted = wait_phase(custom_objects, "Ready", timeout=120, stable="tree")
        assert promoted["stable"]["submission"] == "tree" and "canary" not in promoted
        before_broken = load.count()
        swap(custom_objects, "broken")
        failed = wait_phase(custom_objects, "Failed", timeout=120)
        time.sleep(1)
    answers = load.stop()
    actions = [(h["action"], h["submission"]) for h in failed["history"]]
    assert actions[:3] == [("Deployed", "lr"), ("CanaryStarted", "tree"), ("StepAdvanced", "tree")]
    assert ("Promoted", "tree") in actions and actions[-1] == ("RolledBack", "broken")
    promotion = next(h for h in failed["history"] if h["action"] == "Promoted")
    assert promotion["values"]["errorRate"] == 0.0  # the values that decided are kept
    rollback = failed["history"][-1]
    assert rollback["values"]["errorRate"] > 0.05 and "error rate" in rollback["reason"]
    assert failed["stable"]["submission"] == "tree" and failed["rejected"]["submission"] == "broken"
    assert failed["analysis"]["source"] == "prometheus"
    assert len(answers) > before_broken > 20
    assert swap_failures(answers, broken={"broken"}) == [], "requests failed because of the swap itself"
    during_broken = answers[before_broken:]
    broken_share = sum(a.submission == "broken" for a in during_broken) / len(during_broken)
    assert broken_share < 0.35, "the broken candidate got more than its 20% step (a rollback must never route to it)"
    served_by = {a.submission for a in answers if a.status == 200}
    assert {"lr", "tree"} <= served_by
    ready_condition = next(c for c in failed["conditions"] if c["type"] == "Ready")
    assert ready_condition["status"] == "False" and ready_condition["reason"] == "RolledBack"
    events = wait_for(lambda: {e.reason for e in core.list_namespaced_event("default").items
                               if e.involved_object.kind == "ModelDeployment"} >= {"RolledBack"} and
                      {e.reason for e in core.list_namespaced_event("default").items
                       if e.involved_object.kind == "ModelDeployment"}, timeout=30, what="the rollout's Events")
    assert {"Deployed", "CanaryStarted", "StepAdvanced", "Promoted", "RolledBack"} <= events
    playground = custom_objects.get_namespaced_custom_object("podium.dev", "v1alpha1", "default", "playgrounds",
                                                             "iris")
    assert playground["status"]["deployment"] == "iris"


def test_a_slow_candidate_is_rolled_back_for_latency(served, custom_objects):
    _, X_test = served
    custom_objects.create_namespaced_custom_object(*MDEP, deployment("Standard", "lr"))
    url = f"{wait_phase(custom_objects, 'Ready')['url']}/v1/models/iris:predict"
    with Load(url, body(X_test), clients=3, max_seconds=180) as load:
        swap(custom_objects, "slow")
        failed = wait_phase(custom_objects, "Failed", timeout=120)
    assert swap_failures(load.stop()) == []
    rollback = failed["history"][-1]
    assert rollback["action"] == "RolledBack" and rollback["values"]["latencyRatio"] > 3.0
    assert "p99 latency" in rollback["reason"]


def test_shadow_traffic_never_changes_an_answer(served, custom_objects):
    _, X_test = served
    custom_objects.create_namespaced_custom_object(*MDEP, deployment("Standard", "lr", shadow={"submission": "broken"}))
    ready = wait_for(lambda: (s := status(custom_objects)).get("phase") == "Ready" and s.get("shadow") and s,
                     timeout=120, what="the shadow to start")
    url = f"{ready['url']}/v1/models/iris:predict"
    with Load(url, body(X_test), clients=2, max_seconds=60, max_requests=300) as load:
        wait_for(lambda: load.count() >= 300, timeout=60, what="300 answers")
    answers = load.stop()
    assert answers and all(a.status == 200 and a.submission == "lr" for a in answers)
    assert len({a.body for a in answers}) == 1  # the same rows, the same answer: the stable model's
    shadow = wait_for(lambda: (s := status(custom_objects)["shadow"]).get("values", {}).get("comparisons") and s,
                      timeout=60, what="shadow comparisons")
    assert shadow["submission"] == "broken" and shadow["values"]["errorRate"] == pytest.approx(1.0, abs=0.02)
    assert [t["role"] for t in ready["traffic"]] == ["stable", "shadow"]


@pytest.fixture
def without_prometheus(tmp_path, monkeypatch):
    from tests.integration.conftest import running_cluster

    yield from running_cluster(tmp_path, monkeypatch, prometheus=False)


def test_without_prometheus_the_operator_scrapes_the_predictors_and_says_so(without_prometheus):
    import kubernetes.client

    config = kubernetes.client.Configuration()
    config.host = without_prometheus.api.url
    custom_objects = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))
    _, X_test = evaluated_models(custom_objects)
    assert without_prometheus.prometheus is None
    custom_objects.create_namespaced_custom_object(*MDEP, deployment("Standard", "lr"))
    url = f"{wait_phase(custom_objects, 'Ready')['url']}/v1/models/iris:predict"
    with Load(url, body(X_test), clients=2, max_seconds=120) as load:
        swap(custom_objects, "broken")
        failed = wait_phase(custom_objects, "Failed", timeout=100)
    assert swap_failures(load.stop(), broken={"broken"}) == []
    assert failed["analysis"]["source"] == "direct" and failed["history"][-1]["action"] == "RolledBack"
    assert failed["history"][-1]["values"]["errorRate"] == 1.0  # counted exactly: two scrapes, no extrapolation
