"""The wire between the operator and the evaluation Jobs: step arguments, termination log, result files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium import storage
from podium.errors import StorageError
from podium.evaluation.wire import (
    MAX_RESULT_BYTES,
    InvalidResult,
    PredictArgs,
    PrivateResult,
    PublicResult,
    ScoreArgs,
    StageArgs,
    finite_metrics,
    staged_features_name,
    termination_log_path,
)

ROOT = Path(__file__).resolve().parents[2]

paths = st.text().map(Path)
labels = st.lists(st.one_of(st.text(), st.integers(), st.booleans(),
                            st.floats(allow_nan=False, allow_infinity=False)), max_size=5)

stage_args = st.builds(StageArgs, artifact=st.text(), features=st.text(), dest=paths,
                       preprocessor=st.none() | st.text())
predict_args = st.builds(PredictArgs, artifact=paths, features=paths, out=paths, preprocessor=st.none() | paths,
                         batch_rows=st.integers(), termination_log=st.none() | paths)
score_args = st.builds(
    ScoreArgs, predictions=st.text(), labels=st.text(), task=st.sampled_from(["classification", "regression"]),
    class_labels=st.none() | labels, results=st.text(), private=st.text(), split=st.none() | st.text(),
    metadata=st.none() | paths, termination_log=st.none() | paths,
)


@given(st.one_of(stage_args, predict_args, score_args))
def test_argv_round_trips(args: StageArgs | PredictArgs | ScoreArgs) -> None:
    argv = args.to_argv()
    assert all(isinstance(part, str) for part in argv)
    assert type(args).from_argv(argv) == args


def test_argv_spells_each_field_as_a_kebab_case_option() -> None:
    args = ScoreArgs(predictions="p.npz", labels="-odd.csv", task="classification", class_labels=["a", 1],
                     results="r.json", private="s.json", termination_log=Path("/t/log"))
    assert args.to_argv() == [
        "--predictions", "p.npz", "--labels=-odd.csv", "--task", "classification", "--class-labels", '["a", 1]',
        "--results", "r.json", "--private", "s.json", "--termination-log", "/t/log",
    ]  # fmt: skip
    assert PredictArgs(artifact=Path("m"), features=Path("f"), out=Path("o")).to_argv() == [
        "--artifact", "m", "--features", "f", "--out", "o"]  # the default batch size is the step's own


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--artifact", "m", "--features", "f"], "--out"),
        (["--artifact", "m", "--features", "f", "--out", "o", "--batch-rows", "many"], "--batch-rows"),
        (["--artifact", "m", "--features", "f", "--out", "o", "--unknown", "x"], "--unknown"),
    ],
)
def test_bad_predict_arguments_exit_2_naming_the_option(argv: list[str], named: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        PredictArgs.from_argv(argv, prog="predict")
    assert done.value.code == 2 and named in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--task", "ranking"], "--task"),
        (["--task", "classification", "--class-labels", "cat,dog"], "--class-labels"),
        (["--task", "classification", "--class-labels", '{"a": 1}'], "--class-labels"),
        (["--task", "classification", "--class-labels", '[["a"]]'], "--class-labels[0]"),
    ],
)
def test_bad_score_arguments_exit_2_naming_the_option(extra: list[str], named: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        ScoreArgs.from_argv(["--predictions", "p", "--labels", "l", "--results", "r", "--private", "s", *extra])
    assert done.value.code == 2 and named in capsys.readouterr().err


def test_staged_features_keep_the_suffix_readers_go_by() -> None:
    assert staged_features_name("s3://podium/iris/features.parquet") == "features.parquet"
    assert staged_features_name("/holdouts/x.csv") == "features.csv"


def test_termination_log_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_TERMINATION_LOG", raising=False)
    assert termination_log_path(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.setenv("PODIUM_TERMINATION_LOG", str(tmp_path / "from-env"))
    assert termination_log_path() == tmp_path / "from-env"
    assert termination_log_path(tmp_path / "explicit") == tmp_path / "explicit"  # explicit wins
    monkeypatch.setenv("PODIUM_TERMINATION_LOG", str(tmp_path / "no" / "such" / "dir" / "log"))
    assert termination_log_path() is None  # nowhere to write it
    monkeypatch.delenv("PODIUM_TERMINATION_LOG")
    expected = Path("/dev/termination-log")
    writable = os.access(expected, os.W_OK) if expected.exists() else os.access(expected.parent, os.W_OK)
    assert termination_log_path() == (expected if writable else None)


def test_finite_metrics_keep_finite_numbers_only() -> None:
    raw = {"accuracy": 0.9, "n": 3, "auc": None, "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"),
           "text": "0.5", "list": [1.0], "huge": 10**400, "flag": True}
    assert finite_metrics(raw) == {"accuracy": 0.9, "n": 3.0, "flag": 1.0}  # bools count, as they always did
    assert all(type(value) is float for value in finite_metrics(raw).values())
    assert finite_metrics(None) == {} and finite_metrics([1, 2]) == {} and finite_metrics("x") == {}


def test_result_files_round_trip_and_drop_what_is_not_a_finite_metric() -> None:
    written = PublicResult(public={"accuracy": 0.75, "roc_auc": None}, rows={"all": 3, "public": 2, "private": 1},
                           metadata={"framework": "sklearn"})
    assert written.public == {"accuracy": 0.75}
    assert PublicResult.from_json(written.model_dump_json(), source="r.json") == written
    read = PrivateResult.from_json(b'{"private": {"accuracy": null, "f1": 1, "x": "y"}, "all": null}', source="s")
    assert read.private == {"f1": 1.0} and read.all == {}
    with pytest.raises(InvalidResult, match="finite"):  # the strict reader: no NaN/Infinity gets as far as a status
        PrivateResult.from_json(b'{"private": {"accuracy": NaN, "f1": 1}}', source="s")
    assert PublicResult.from_json(b"{}", source="r").public == {}  # every part is optional
    assert PublicResult.from_json(b'{"metadata": [1, 2]}', source="r").metadata == {}  # as bounded_metadata takes it


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not json", "not a valid PublicResult"),
        (b"[1, 2, 3]", "not a valid PublicResult"),
        (b'{"rows": {"all": "many"}}', "rows"),
        (b'{"public": 1}' + b" " * MAX_RESULT_BYTES, "more than the"),
    ],
)
def test_a_bad_result_file_is_a_clear_error(data: bytes, says: str) -> None:
    with pytest.raises(InvalidResult, match=says) as raised:
        PublicResult.from_json(data, source="s3://podium/podium-results/x.json")
    assert "s3://podium/podium-results/x.json" in str(raised.value) and "Fix:" in str(raised.value)


def test_result_files_are_read_with_a_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(b"x" * 101)
    assert storage.read_bytes(path, limit=101) == b"x" * 101
    with pytest.raises(StorageError, match="larger than 100 bytes"):
        storage.read_bytes(path, limit=100)


def test_the_wire_is_pure() -> None:
    """The manifest builders import it: no object store, no numpy, nothing that does I/O."""
    code = ("import sys, podium.evaluation.wire, podium_operator.reconcile.evaluation_jobs; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('minio', 'numpy', 'urllib3') or m in ('podium.storage', 'podium.evaluation.stage'))))")
    done = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": f"{ROOT / 'sdk'}{os.pathsep}{ROOT / 'operator'}"})
    assert json.loads(done.stdout) == []
