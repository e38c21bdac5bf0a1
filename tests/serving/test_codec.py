"""The pure payload codec: requests to features, predictions to answers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.artifacts.schema import InputSchema
from podium.errors import PodiumError
from podium.predictions import Predictions
from podium.serving.codec import LabelMap, Layout, RequestError, v1_features, v2_features, v2_outputs
from podium.serving.model import artifact_path

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(st.integers(1, 6).flatmap(lambda width: st.lists(st.lists(finite, min_size=width, max_size=width),
                                                         min_size=1, max_size=20)))
@settings(max_examples=60, deadline=None)
def test_numeric_rows_become_one_array_without_pandas(rows):
    features = v1_features({"instances": rows}, Layout())
    assert isinstance(features, np.ndarray)
    np.testing.assert_array_equal(features, np.asarray(rows))


@given(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=10))
@settings(max_examples=40, deadline=None)
def test_named_rows_and_column_tensors_follow_the_schemas_column_order(rows):
    layout = Layout.of(InputSchema(columns=["a", "b", "c"], dtypes=["float64"] * 3, shape=[None, 3]),
                       preprocessor=False)
    named = [{"c": row[2], "a": row[0], "b": row[1], "extra": 1} for row in rows]
    np.testing.assert_array_equal(v1_features({"instances": named}, layout), np.asarray(rows))
    tensors = [SimpleNamespace(name=name, shape=[len(rows)], datatype="FP64",
                               data=[row[index] for row in rows]) for index, name in reversed(list(enumerate("abc")))]
    np.testing.assert_array_equal(v2_features(tensors, layout), np.asarray(rows))


def test_a_preprocessor_over_named_columns_gets_a_dataframe_with_the_schemas_dtypes():
    layout = Layout.of(InputSchema(columns=["x", "kind"], dtypes=["float64", "object"], shape=[None, 2]),
                       preprocessor=True)
    frame = v1_features({"instances": [[1, "a"], [2, "b"]]}, layout)
    assert list(frame.columns) == ["x", "kind"] and str(frame["x"].dtype) == "float64"


@pytest.mark.parametrize("payload", [{"instances": []}, {"instances": "x"}, [], {"instances": [[1], {"a": 1}]}])
def test_unreadable_v1_payloads_name_instances(payload):
    with pytest.raises(RequestError) as caught:
        v1_features(payload, Layout())
    assert caught.value.field == "instances" and caught.value.hint


@given(st.permutations(["a", "b", "c", "d"]), st.lists(st.integers(0, 3), min_size=1, max_size=12))
@settings(max_examples=60, deadline=None)
def test_probability_columns_follow_the_playgrounds_label_order(playground, picks):
    model_classes = np.asarray(["a", "b", "c", "d"])
    proba = np.eye(4)[picks]
    labels, answered, classes = LabelMap(playground).apply(
        Predictions(labels=model_classes[picks], proba=proba, classes=model_classes))
    assert classes == playground
    for label, row in zip(labels, answered, strict=True):
        assert playground[int(np.argmax(row))] == label


def test_numeric_model_classes_are_answered_as_the_playground_spells_them():
    labels, proba, classes = LabelMap(["0", "1"]).apply(
        Predictions(labels=np.array([1, 0]), proba=np.array([[0.2, 0.8], [0.9, 0.1]]), classes=np.array([0, 1])))
    assert labels == ["1", "0"] and classes == ["0", "1"] and proba == [[0.2, 0.8], [0.9, 0.1]]
    with pytest.raises(PodiumError, match="not among the playground's class labels"):
        LabelMap(["cat"]).check([0, 1])


def test_v2_label_datatypes():
    assert v2_outputs([1, 2], None, None)[0]["datatype"] == "INT64"
    assert v2_outputs([1.5, 2], None, None)[0]["datatype"] == "FP64"
    assert v2_outputs(["a", 1], None, None)[0] == {"name": "label", "shape": [2], "datatype": "BYTES",
                                                   "data": ["a", "1"]}


def test_artifact_path(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "artifact").mkdir()
    (tmp_path / "one" / "artifact" / "manifest.json").write_text("{}")
    assert artifact_path(tmp_path / "one") == tmp_path / "one" / "artifact"
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "m.tgz").write_bytes(b"")
    assert artifact_path(tmp_path / "two") == tmp_path / "two" / "m.tgz"
    (tmp_path / "two" / "n.tar.gz").write_bytes(b"")
    with pytest.raises(PodiumError, match="storageUri"):
        artifact_path(tmp_path / "two")
