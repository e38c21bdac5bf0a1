"""The router's pure parts: comparing a shadow's answer with the stable one, merging predictors' metrics."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from podium_operator.local.serving.router import SmoothWeighted, compare, merge_metrics


def v2(labels: list[str]) -> bytes:
    return json.dumps({"outputs": [{"name": "probabilities", "data": [0.1]},
                                   {"name": "label", "shape": [len(labels)], "datatype": "BYTES",
                                    "data": labels}]}).encode()


def test_compare_v1_predictions_and_v2_labels() -> None:
    assert compare(b'{"predictions": [1, 2]}', b'{"predictions": [1, 2], "probabilities": [[1]]}') == "agree"
    assert compare(b'{"predictions": [1, 2]}', b'{"predictions": [1, 3]}') == "disagree"
    assert compare(v2(["a", "b"]), v2(["a", "b"])) == "agree"
    assert compare(v2(["a", "b"]), v2(["a", "c"])) == "disagree"
    assert compare(b'{"predictions": [1]}', b"not json") == "error"
    assert compare(b'{"something": 1}', b'{"something": 1}') == "error"


def test_merge_metrics_keeps_one_header_per_family_and_labels_each_revision() -> None:
    text = ('# HELP podium_predictor_requests_total Predictions\n# TYPE podium_predictor_requests_total counter\n'
            'podium_predictor_requests_total{model_name="m",outcome="ok"} 3.0\nprocess_open_fds 7.0\n')
    merged = merge_metrics([("v1", text), ("v2", text)])
    lines = merged.splitlines()
    assert lines.count("# TYPE podium_predictor_requests_total counter") == 1
    assert 'podium_predictor_requests_total{revision="v1",model_name="m",outcome="ok"} 3.0' in lines
    assert 'podium_predictor_requests_total{revision="v2",model_name="m",outcome="ok"} 3.0' in lines
    assert 'process_open_fds{revision="v2"} 7.0' in lines
    samples = [line for line in lines if line.startswith("podium_predictor_requests_total")]
    first = lines.index("# TYPE podium_predictor_requests_total counter")
    assert lines[first + 1: first + 3] == samples  # a family's samples follow its header, together


@given(st.dictionaries(st.sampled_from("abc"), st.integers(1, 100), min_size=2), st.sampled_from("abc"))
def test_split_skips_excluded_predictors(weights: dict[str, int], excluded: str) -> None:
    split = SmoothWeighted(weights)
    picks = [split.pick(exclude=[excluded]) for _ in range(50)]
    assert excluded not in picks and None not in picks
