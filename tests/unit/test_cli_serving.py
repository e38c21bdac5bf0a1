"""`podium deploy | swap | predict | rollout status`: arguments, input files, and table/json/yaml output
(against a real API emulator; the status is written here as the operator would)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from podium.cli import build_parser, main
from podium.cli_serving import read_rows
from podium.errors import InvalidConfig
from podium.serving import codec
from tests.local.conftest import make_api_client, podium_api_server  # noqa: F401  (fixture)
from tests.unit.test_deployments_sdk import (  # noqa: F401  (fixture)
    CANARY,
    STABLE,
    Answering,
    canary_at,
    http_server,
    write_status,
)


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(argv)
    assert raised.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["deploy", "iris"], "one of the arguments --version --submission is required"),
    (["deploy", "iris", "--version", "3", "--submission", "a"], "not allowed with argument"),
    (["deploy", "iris", "--version", "0"], "a leaderboard version is a whole number from 1"),
    (["deploy", "iris", "--version", "3", "--steps", "0,50"], "each step a percent from 1 to 100"),
    (["deploy", "iris", "--version", "3", "--steps", "10,10"], "none repeated"),
    (["deploy", "iris", "--version", "3", "--steps", "ten"], "comma-separated traffic percents"),
    (["deploy", "iris", "--version", "3", "--mode", "Serverless"], "invalid choice: 'Serverless'"),
    (["swap", "iris"], "one of the arguments --version --submission is required"),
    (["predict", "iris", "rows.csv", "--protocol", "v3"], "invalid choice: 'v3'"),
    (["rollout", "iris"], "invalid choice: 'iris'"),
    (["rollout", "status", "iris", "-o", "xml"], "invalid choice: 'xml'"),
])
def test_bad_arguments_are_refused_with_the_reason(argv, message, capsys):
    assert message in refused(argv, capsys)


# --- input rows ----------------------------------------------------------------------------------------
def test_rows_are_read_from_csv_with_a_header_or_json():
    frame = read_rows("a,b\n1.5,2\n3,4\n")
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["a", "b"] and frame.shape == (2, 2)
    assert read_rows("[[1, 2], [3, 4]]") == [[1, 2], [3, 4]]
    assert read_rows('{"instances": [[1, 2]]}') == [[1, 2]]
    named = read_rows('[{"a": 1, "b": "x"}]')
    assert isinstance(named, pd.DataFrame) and named.to_dict(orient="records") == [{"a": 1, "b": "x"}]


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no rows"), ("[1, 2", "is not valid JSON"), ("[]", "non-empty JSON list of rows"),
    ('{"rows": []}', "non-empty JSON list of rows"),
])
def test_unreadable_rows_name_the_file_and_the_fix(text, message):
    with pytest.raises(InvalidConfig, match=message) as raised:
        read_rows(text, "rows.json")
    assert raised.value.field == "FILE" and "rows.json" in str(raised.value)


@given(st.lists(st.tuples(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**9, 10**9)),
                min_size=1, max_size=20))
def test_a_frame_written_as_csv_reads_back_the_same(rows):
    frame = pd.DataFrame(rows, columns=["x", "n"])
    read = read_rows(frame.to_csv(index=False))
    assert isinstance(read, pd.DataFrame)
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)


# --- against the emulator ------------------------------------------------------------------------------
@pytest.fixture
def cluster(podium_api_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    from podium.client import ModelPlayground

    kubeconfig = podium_api_server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    pg = ModelPlayground("iris", kubeconfig=str(kubeconfig), progress=False)
    pg.admin = make_api_client(podium_api_server)  # type: ignore[attr-defined]
    return pg


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    out, err = capsys.readouterr()
    return int(raised.value.code or 0), out, err


def test_deploy_no_wait_creates_the_deployment_with_the_policy_given(cluster, capsys):
    code, out, err = run(["deploy", "iris", "--version", "3", "--steps", "10,50", "--interval", "30",
                          "--mode", "Knative", "--no-wait", "-o", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["target"] == "version 3"
    from podium.deployments import read

    spec = read(cluster)["spec"]
    assert spec["rollout"]["steps"] == [10, 50] and spec["rollout"]["stepIntervalSeconds"] == 30
    assert spec["runtime"]["deploymentMode"] == "Knative"
    code, out, err = run(["swap", "iris", "--submission", "forest", "--no-wait", "-o", "yaml"], capsys)
    assert code == 0, err
    assert yaml.safe_load(out)["target"] == "submission forest"


def test_rollout_status_as_a_table_json_and_yaml(cluster, capsys):
    assert run(["deploy", "iris", "--version", "4", "--no-wait"], capsys)[0] == 0
    write_status(cluster, "iris", canary_at(10)["status"])
    code, table, _ = run(["rollout", "status", "iris"], capsys)
    assert code == 0
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "PLAYGROUND", "TARGET", "PHASE", "URL"]
    assert lines[1].split() == ["iris", "iris", "version", "4", "Progressing", "http://127.0.0.1:9"]
    assert ["stable", STABLE["submission"], "3", "90%"] in [line.split() for line in lines]
    assert ["canary", CANARY["submission"], "4", "10%"] in [line.split() for line in lines]
    assert "analysis: Passed at 10% (canary): errorRate=0" in table
    as_json = json.loads(run(["rollout", "status", "iris", "-o", "json"], capsys)[1])
    as_yaml = yaml.safe_load(run(["rollout", "status", "iris", "-o", "yaml"], capsys)[1])
    assert as_json == json.loads(json.dumps(as_yaml, default=str))
    assert as_json["canary_percent"] == 10 and as_json["traffic"][1]["role"] == "canary"


def test_rollout_status_watch_prints_changes_until_the_rollout_ends(cluster, capsys):
    assert run(["deploy", "iris", "--version", "4", "--no-wait"], capsys)[0] == 0
    write_status(cluster, "iris", {"phase": "Ready", "stable": CANARY, "url": "http://127.0.0.1:9"})
    code, out, err = run(["rollout", "status", "iris", "-w", "--timeout", "30"], capsys)
    assert code == 0 and err.strip() == "Ready" and "Ready" in out.splitlines()[1]


def test_predict_reads_a_csv_file_and_prints_labels_and_probabilities(cluster, capsys, tmp_path, http_server,  # noqa: F811
                                                                      monkeypatch):
    assert run(["deploy", "iris", "--version", "3", "--no-wait"], capsys)[0] == 0
    write_status(cluster, "iris", {"phase": "Ready", "stable": STABLE, "url": http_server, "inferenceService": "iris"})
    rows = tmp_path / "rows.csv"
    pd.DataFrame(np.asarray([[5.1, 3.5], [6.2, 2.9]]), columns=["a", "b"]).to_csv(rows, index=False)
    answer = codec.v1_response(["setosa", "virginica"], [[0.75, 0.25], [0.5, 0.5]], ["setosa", "virginica"])
    Answering.replies, Answering.seen = {"/v1/models/iris:predict": (200, json.dumps(answer).encode())}, []
    code, out, err = run(["predict", "iris", str(rows), "--probabilities"], capsys)
    assert code == 0, err
    assert [line.split() for line in out.splitlines()] == [
        ["label", "setosa", "virginica"], ["setosa", "0.75", "0.25"], ["virginica", "0.50", "0.50"]]
    assert Answering.seen[0][1] == {"instances": [{"a": 5.1, "b": 3.5}, {"a": 6.2, "b": 2.9}]}
    code, out, _ = run(["predict", "iris", str(rows), "-o", "json"], capsys)
    assert code == 0 and json.loads(out) == [{"label": "setosa"}, {"label": "virginica"}]
    monkeypatch.setattr("sys.stdin", io.StringIO("[[5.1, 3.5], [6.2, 2.9]]"))  # JSON rows on standard input
    code, out, _ = run(["predict", "iris", "-", "-o", "yaml"], capsys)
    assert code == 0 and yaml.safe_load(out) == [{"label": "setosa"}, {"label": "virginica"}]
    assert Answering.seen[-1][1] == {"instances": [[5.1, 3.5], [6.2, 2.9]]}


def test_failures_are_one_line(cluster, capsys, tmp_path):
    code, out, err = run(["rollout", "status", "iris"], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("podium: name: no ModelDeployment iris in namespace default")
    code, _, err = run(["predict", "iris", str(tmp_path / "missing.csv")], capsys)
    assert code == 1 and "cannot read" in err and len(err.strip().splitlines()) == 1
