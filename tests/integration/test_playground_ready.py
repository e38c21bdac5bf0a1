"""Through the real operator: a Playground whose holdout cannot score stays Ready=False naming the field, and
a shuffled re-upload of the same holdout splits the same rows into the private part."""

from __future__ import annotations

import io
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import numpy as np
import pandas as pd
import pytest
from kubernetes.client.exceptions import ApiException

from podium import storage
from podium.data import write_table
from podium.split import HoldoutSplit
from podium_operator.local.cluster import LocalCluster
from tests.chart import not_granted
from tests.helpers import wait_for
from tests.integration.holdouts import IRIS_CLASSES, iris_playground, iris_split

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

PG = ("podium.dev", "v1alpha1", "default", "playgrounds")
OPERATOR_CLIENTS = ("kopf", "podium-operator")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubernetes.client.CustomObjectsApi]:
    """One local cluster for the module (each test uses its own playgrounds), checked as conftest's is."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as running, pytest.MonkeyPatch.context() as patch:
        for key, value in running.environment().items():
            if key == "KUBECONFIG" or key.startswith(("AWS_", "PODIUM_")):
                patch.setenv(key, value)
        assert running.api is not None
        config = kubernetes.client.Configuration()
        config.host = running.api.url
        yield kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))
        calls = running.api.call(lambda: set(running.api.emulator.access_log))  # type: ignore[union-attr]
        assert not_granted([call for client, call in calls if client in OPERATOR_CLIENTS]) == []
        log = running.state_dir / "operator.log"
        if log.exists():
            assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-4000:]


def _upload(name: str, features: pd.DataFrame, labels: Any, *, labels_text: str | None = None) -> tuple[str, str]:
    """Upload a holdout below holdouts/<name>/; ``labels_text`` is stored verbatim instead of ``labels``."""
    with tempfile.TemporaryDirectory() as scratch:
        x = storage.upload(write_table(features, Path(scratch) / "features.csv"), f"s3://podium/holdouts/{name}/features.csv")
        y_path = Path(scratch) / "labels.csv"
        if labels_text is not None:
            y_path.write_text(labels_text)
        else:
            write_table(np.asarray(labels), y_path)
        y = storage.upload(y_path, f"s3://podium/holdouts/{name}/labels.csv")
    return x, y


def _ready(api: kubernetes.client.CustomObjectsApi, name: str) -> dict[str, Any]:
    def condition() -> dict[str, Any] | None:
        obj: dict[str, Any] = api.get_namespaced_custom_object(*PG, name)  # type: ignore[assignment]
        status = obj.get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)

    return wait_for(condition, timeout=60, what=f"{name}'s Ready condition")


X, _, Y, _ = iris_split()  # 90 training rows of iris: the holdout here
X = X.reset_index(drop=True)
TEXT = "".join(f"{label}\n" for label in Y)


def _broken(case: str) -> tuple[pd.DataFrame, Any, str | None, dict[str, Any]]:
    """(features, labels, verbatim labels text or None, spec overrides) of each broken holdout."""
    one_short, cow = Y[:-1], np.where(np.arange(len(Y)) == 3, "cow", Y)
    empty = "label\n" + "".join(f"{'' if i == 7 else label}\n" for i, label in enumerate(Y))
    tiny = X.iloc[:3]
    cases: dict[str, tuple[pd.DataFrame, Any, str | None, dict[str, Any]]] = {
        "row-counts": (X, one_short, None, {}),
        "no-header": (X, None, TEXT, {}),
        "empty-label": (X, None, empty, {}),
        "unknown-class": (X, cow, None, {}),
        "text-regression": (X, Y, None, {"task": "regression", "classLabels": [], "primaryMetric": "mse"}),
        "r2-one-public-row": (tiny, np.array([0.5, 1.5, 2.5]), None,
                              {"task": "regression", "classLabels": [], "primaryMetric": "r2",
                               "competition": {"privateFraction": 0.6}}),
        "too-small": (X.iloc[:2], Y[:2], None, {"competition": {"privateFraction": 0.8}}),
        "missing-id-column": (X, Y, None, {"holdout": {"idColumn": "row"}}),
    }
    return cases[case]


@pytest.mark.parametrize(
    ("case", "field", "words"),
    [
        ("row-counts", "holdout", "has 90 rows but holdout.labels has 89"),
        ("no-header", "holdout.labels", "labels.csv has no header row"),
        ("empty-label", "holdout.labels", "have no label"),
        ("unknown-class", "holdout.labels", "'cow'"),
        ("text-regression", "holdout.labels", "regression playground needs numbers"),
        ("r2-one-public-row", "primaryMetric", "public part, which has 1 row"),
        ("too-small", "holdout.labels", "empty public part"),
        ("missing-id-column", "holdout.idColumn", "no column 'row'"),
    ],
)
def test_a_holdout_that_cannot_score_is_not_ready(api, case: str, field: str, words: str) -> None:
    features, labels, text, spec = _broken(case)
    holdout = dict(zip(("features", "labels"), _upload(case, features, labels, labels_text=text), strict=True))
    body = iris_playground(case, holdout["features"], holdout["labels"])
    for key, value in spec.items():
        body["spec"][key] = {**body["spec"][key], **value} if key == "holdout" else value
    if not body["spec"]["classLabels"]:
        del body["spec"]["classLabels"]
    api.create_namespaced_custom_object(*PG, body)
    ready = _ready(api, case)
    assert ready["status"] == "False" and ready["reason"] == "InvalidHoldout", ready
    assert ready["message"].startswith(f"{field}: ") and words in ready["message"], ready["message"]
    assert "Fix: " in ready["message"]


def test_duplicate_class_labels_are_refused_by_the_api_server(api) -> None:
    body = iris_playground("twice", *_upload("twice", X, Y), classLabels=[*IRIS_CLASSES, "setosa"])
    with pytest.raises(ApiException) as raised:
        api.create_namespaced_custom_object(*PG, body)
    assert raised.value.status == 422 and "spec.classLabels[3]: Duplicate value" in str(raised.value.body)


def _private_rows(api, name: str) -> Counter[tuple[Any, ...]]:
    """The private part as a multiset of rows (features and label), read from the stored split and snapshot."""
    status = api.get_namespaced_custom_object(*PG, name)["status"]
    split = HoldoutSplit.from_json(storage.read_bytes(status["split"]["uri"])).private
    with tempfile.TemporaryDirectory() as scratch:
        features = pd.read_csv(storage.download(status["holdout"]["features"], Path(scratch) / "x.csv"))
        labels = pd.read_csv(storage.download(status["holdout"]["labels"], Path(scratch) / "y.csv"), dtype=str)
    rows = features.assign(label=labels.iloc[:, 0]).iloc[split]
    return Counter(map(tuple, rows.astype(str).to_numpy().tolist()))


@pytest.mark.parametrize("id_column", [None, "row"])
def test_a_shuffled_re_upload_gives_the_same_private_rows(api, id_column: str | None) -> None:
    features = X.assign(row=[f"r{i:03d}" for i in range(len(X))]) if id_column else X
    order = np.random.default_rng(7).permutation(len(X))
    names = []
    for version, rows in (("a", np.arange(len(X))), ("b", order)):
        name = f"shuffle-{id_column or 'content'}-{version}"
        uris = _upload(name, features.iloc[rows].reset_index(drop=True), Y[rows])
        spec: dict[str, Any] = {"competition": {"privateFraction": 0.5, "seed": 3}}
        body = iris_playground(name, *uris, **spec)
        if id_column:
            body["spec"]["holdout"]["idColumn"] = id_column
        api.create_namespaced_custom_object(*PG, body)
        assert _ready(api, name)["status"] == "True", _ready(api, name)
        names.append(name)
    first, second = (_private_rows(api, name) for name in names)
    assert sum(first.values()) == 45 and first == second
    snapshot = api.get_namespaced_custom_object(*PG, names[0])["status"]["holdout"]["features"]
    shown = pd.read_csv(io.BytesIO(storage.read_bytes(snapshot))).columns.tolist()
    assert shown == list(X.columns)  # what models read holds no row identity (an id can leak the label)
