"""A failed SDK call loses nothing stored and leaves nothing behind (the whole local cluster, real operator).

The rule under test (podium.client): check the resource (pydantic, then the API server's dry run of the exact
create) before uploading anything; upload to keys never used before, below the caller's own prefix; delete
what the call uploaded when the create still fails.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from podium import storage
from podium.client import ModelPlayground
from podium.errors import AlreadyExists, InvalidConfig, InvalidResource
from podium.uri import upload_prefix
from tests.integration.holdouts import iris_split

pytestmark = pytest.mark.slow  # flows through the real operator

SUB = ("podium.dev", "v1alpha1", "default", "submissions")


def uploads() -> dict[str, bytes]:
    """Every object below uploads/ (only clients write there; the operator's own objects are elsewhere)."""
    return {uri: storage.read_bytes(uri) for uri in storage.list_uris("s3://podium/uploads/")}


def iris(name: str = "iris", **spec) -> ModelPlayground:
    _, X_test, _, y_test = iris_split()
    return ModelPlayground.create(name, X_test, y_test, task="classification", primary_metric="accuracy",
                                  progress=False, **spec)


def test_creating_an_existing_playground_changes_nothing_stored(cluster):
    playground = iris()
    playground.wait_ready()
    spec = playground.get()["spec"]
    assert spec["holdout"]["features"].startswith(upload_prefix("podium", "default", "iris", playground.whoami()))
    before = uploads()
    assert len(before) == 2
    _, X_test, _, y_test = iris_split(seed=1)
    with pytest.raises(AlreadyExists) as raised:
        ModelPlayground.create("iris", X_test[:30], y_test[:30], task="classification", primary_metric="accuracy")
    assert str(raised.value) == ("playground iris already exists in namespace default. Fix: choose another name, "
                                 "or delete it with `kubectl delete pg iris`")
    assert uploads() == before  # the stored holdout is untouched, and nothing new was left
    assert playground.get()["spec"] == spec


def test_an_invalid_playground_uploads_nothing(cluster):
    _, X_test, _, y_test = iris_split()
    with pytest.raises(InvalidConfig, match="primaryMetric"):  # pydantic, before the API server
        ModelPlayground.create("iris", X_test, y_test, task="classification", primary_metric="rmse")
    with pytest.raises(InvalidResource, match="metadata.name"):  # only the API server's dry run knows
        iris("Not_A_Name")
    assert uploads() == {}


def test_submitting_under_a_taken_name_keeps_the_scored_artifact(cluster):
    X_train, _, y_train, y_test = iris_split()
    playground = iris()
    playground.wait_ready()
    playground.submit_model(LogisticRegression(max_iter=500).fit(X_train, y_train), name="logreg",
                            example_data=X_train)
    (scored,) = playground.wait_for("logreg", timeout=180)
    assert scored["status"]["phase"] == "Evaluated", scored["status"]
    artifact = scored["spec"]["model"]["uri"]
    before = uploads()
    with pytest.raises(AlreadyExists, match="submission logreg already exists"):
        playground.submit_model(LogisticRegression(C=0.01, max_iter=500).fit(X_train, y_train), name="logreg",
                                example_data=X_train)
    with pytest.raises(AlreadyExists, match="submission logreg already exists"):
        playground.submit_predictions(np.asarray(y_test), name="logreg")
    assert uploads() == before and storage.read_bytes(artifact) == before[artifact]
    assert playground.submission("logreg")["spec"] == scored["spec"]


class TakesTheName:
    """A preprocessor whose packaging is when another client creates a Submission of the same name: the
    create that follows this call's dry run and upload fails, as in a real race."""

    def __init__(self, race) -> None:
        self.race = race

    def __call__(self, features):
        return features

    def __reduce__(self):
        self.race()
        return (_identity, ())


def _identity():
    return lambda features: features


def test_a_create_that_fails_after_its_upload_deletes_the_upload(cluster, custom_objects):
    X_train, _, y_train, y_test = iris_split()
    playground = iris()
    playground.wait_ready()
    first = playground.submit_predictions(np.asarray(y_test), name="first")
    before = uploads()
    taken = {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission", "metadata": {"name": "raced"},
             "spec": first["spec"]}
    with pytest.raises(AlreadyExists, match="submission raced already exists"):
        playground.submit_model(LogisticRegression(max_iter=500).fit(X_train, y_train), name="raced",
                                preprocessor=TakesTheName(lambda: custom_objects.create_namespaced_custom_object(
                                    *SUB, taken)), example_data=X_train)
    assert uploads() == before


def test_n_dimensional_features_are_stored_as_npy(cluster):
    digits = load_digits()
    playground = ModelPlayground.create("digits", digits.images[:60], digits.target[:60], task="classification",
                                        primary_metric="accuracy", inputType="image", progress=False)
    holdout = playground.get()["spec"]["holdout"]
    assert holdout["features"].endswith(".npy") and holdout["labels"].endswith(".csv")
    stored = np.load(io.BytesIO(storage.read_bytes(holdout["features"])), allow_pickle=False)
    assert stored.shape == (60, 8, 8) and np.array_equal(stored, digits.images[:60])
