"""The CRD's own rules freeze what scores depend on once a Submission is admitted (checked as the API server does)."""

from __future__ import annotations

import copy

import pytest

from podium.api import PLAYGROUND, SUBMISSION, cel
from podium.api.crdgen import crd_manifest

SCHEMA = crd_manifest(PLAYGROUND)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
BASE = {
    "apiVersion": "podium.dev/v1alpha1", "kind": "Playground", "metadata": {"name": "pg"},
    "spec": {"task": "classification", "classLabels": ["a", "b"], "primaryMetric": "accuracy",
             "holdout": {"features": "s3://b/f.csv", "labels": "s3://b/l.csv"},
             "competition": {"seed": 1, "privateFraction": 0.5, "quotaPerDay": 5}},
}
CHANGES = {
    "seed": ("competition", "seed", 2),
    "fraction": ("competition", "privateFraction", 0.3),
    "labels": ("holdout", "labels", "s3://b/other.csv"),
    "features": ("holdout", "features", "s3://b/other.csv"),
}


def _changed(obj: dict, section: str, key: str, value: object) -> dict:
    new = copy.deepcopy(obj)
    new["spec"][section][key] = value
    return new


def _with_next_version(version: int) -> dict:
    return {**BASE, "status": {"nextVersion": version}}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_holdout_and_split_change_freely_until_a_submission_is_admitted(change):
    for old in (BASE, _with_next_version(1)):
        assert cel.violations(_changed(old, *change), SCHEMA, old) == []


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_holdout_and_split_are_frozen_after_the_first_admission(change):
    old = _with_next_version(2)
    ((field, message),) = cel.violations(_changed(old, *change), SCHEMA, old)
    assert field == "spec" and "frozen once a Submission has been admitted" in message and "new Playground" in message


def test_other_fields_and_dropping_nothing_stay_allowed_after_admission():
    old = _with_next_version(5)
    assert cel.violations(_changed(old, "competition", "quotaPerDay", 9), SCHEMA, old) == []
    removed = copy.deepcopy(old)
    del removed["spec"]["competition"]
    assert cel.violations(removed, SCHEMA, old) != []  # dropping the competition drops its split


def test_custom_metadata_must_be_scalars_and_is_fixed_once_created():
    schema = crd_manifest(SUBMISSION)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    sub = {"apiVersion": "podium.dev/v1alpha1", "kind": "Submission", "metadata": {"name": "s"},
           "spec": {"playground": "pg", "track": "experiment", "predictions": {"uri": "s3://b/p.npz"},
                    "metadata": {"lr": 0.1, "epochs": 3, "augmented": True, "note": "x"}}}
    assert cel.violations(sub, schema) == []
    nested = copy.deepcopy(sub)
    nested["spec"]["metadata"]["bad"] = {"x": 1}
    assert [field for field, _ in cel.violations(nested, schema)] == ["spec.metadata"]
    changed = copy.deepcopy(sub)
    changed["spec"]["metadata"]["lr"] = 0.2
    assert [field for field, _ in cel.violations(changed, schema, sub)] == ["spec.metadata"]
