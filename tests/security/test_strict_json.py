"""The one strict JSON reader for what Podium parses from a Job, and what the operator keeps for a status.

A non-finite number that reaches a Kubernetes status breaks ``kubectl get -o json`` for everyone in the
namespace (``invalid character 'N'``): none may get past the reader, nor past ``bounded_metadata``.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.evaluation.wire import (
    MAX_JSON_DEPTH,
    MAX_RESULT_BYTES,
    InvalidJSON,
    InvalidResult,
    PrivateResult,
    PublicResult,
    strict_json,
)
from podium_operator.reconcile.submission import bounded_metadata

finite_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                  | st.floats(allow_nan=False, allow_infinity=False) | st.text())
finite_json = st.recursive(
    finite_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400"])


@given(finite_json)
def test_finite_json_round_trips(value: object) -> None:
    assert strict_json(json.dumps(value), limit=MAX_RESULT_BYTES) == value
    assert strict_json(json.dumps(value).encode(), limit=MAX_RESULT_BYTES) == value


@given(finite_json, non_finite, st.sampled_from(["list", "object", "alone", "nested"]))
def test_any_json_with_a_non_finite_number_is_rejected(value: object, number: str, where: str) -> None:
    text = {
        "list": f"[{json.dumps(value)}, {number}]",
        "object": f'{{"value": {json.dumps(value)}, "bad": {number}}}',
        "alone": number,
        "nested": f'{{"a": [{{"b": [{number}]}}], "c": {json.dumps(value)}}}',
    }[where]
    with pytest.raises(InvalidJSON, match="finite"):
        strict_json(text, limit=MAX_RESULT_BYTES)


def test_the_reader_refuses_what_json_loads_would_choke_on_or_let_through() -> None:
    with pytest.raises(InvalidJSON, match="larger than 10 bytes"):
        strict_json(b"[" + b" " * 20 + b"]", limit=10)
    with pytest.raises(InvalidJSON, match="nested"):
        strict_json("[" * 100_000 + "]" * 100_000, limit=MAX_RESULT_BYTES)  # not a RecursionError
    with pytest.raises(InvalidJSON, match="nested"):  # parses, but pydantic could not write it out again
        strict_json('{"a": ' + "[" * 300 + "]" * 300 + "}", limit=MAX_RESULT_BYTES)
    assert strict_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, limit=MAX_RESULT_BYTES)
    with pytest.raises(InvalidJSON, match="Unicode"):
        strict_json('{"k": "\\udc80"}', limit=MAX_RESULT_BYTES)  # would fail later, when written out
    with pytest.raises(InvalidJSON, match="Unicode"):
        strict_json('{"\\ud800": 1}', limit=MAX_RESULT_BYTES)
    with pytest.raises(InvalidJSON, match="not JSON"):
        strict_json(b"\xff\xfe{", limit=MAX_RESULT_BYTES)
    with pytest.raises(InvalidJSON, match="not JSON"):
        strict_json("{'single': 'quotes'}", limit=MAX_RESULT_BYTES)
    with pytest.raises(InvalidJSON, match="finite"):
        strict_json("1" * 5000, limit=MAX_RESULT_BYTES)  # more digits than Python converts


@pytest.mark.parametrize("text", [
    '{"public": {"accuracy": NaN}}',
    '{"public": {"accuracy": 0.5}, "metadata": {"loss": Infinity}}',
    '{"public": {"accuracy": 0.5}, "metadata": {"loss": -1e999}}',
])
def test_result_files_with_non_finite_numbers_are_invalid(text: str) -> None:
    with pytest.raises(InvalidResult, match="finite"):
        PublicResult.from_json(text, source="s3://b/r.json")
    with pytest.raises(InvalidResult, match="finite"):
        PrivateResult.from_json(text.replace("public", "private"), source="s3://b/p.json")


def test_a_result_file_over_the_limit_is_invalid() -> None:
    with pytest.raises(InvalidResult, match="more than"):
        PublicResult.from_json(b" " * (MAX_RESULT_BYTES + 1), source="s3://b/r.json")


def test_bounded_metadata_keeps_only_finite_numbers() -> None:
    raw = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "huge": 10**400, "big": 2**63, "ok": 1.5,
           "n": -(2**63), "flag": False, "none": None, "text": "x"}
    kept = bounded_metadata(raw)
    assert kept == {"ok": 1.5, "n": -(2**63), "flag": False, "none": None, "text": "x"}
    json.dumps(kept, allow_nan=False)


any_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text()


@given(st.dictionaries(st.text(), any_scalar | st.lists(any_scalar, max_size=2)))
def test_bounded_metadata_is_always_strict_json(raw: dict) -> None:
    kept = bounded_metadata(raw)
    text = json.dumps(kept, allow_nan=False)  # what a status patch must be
    assert strict_json(text, limit=MAX_RESULT_BYTES) == kept


def test_the_predict_step_writes_what_the_strict_reader_accepts() -> None:
    from podium.evaluation.predict import _strict

    metadata = {"loss": math.nan, "best": math.inf, "n_params": 12, "name": "mlp"}
    text = json.dumps(_strict(metadata), allow_nan=False)
    assert strict_json(text, limit=MAX_RESULT_BYTES) == {"loss": "nan", "best": "inf", "n_params": 12, "name": "mlp"}
