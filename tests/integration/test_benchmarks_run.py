"""The benchmarks stay runnable: each runs on a tiny input and prints its side-by-side figures.

Only that they run and report is checked here; their timings are read by people (never asserted).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # flows through the real operator (make test-fast skips them)

REPO = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> str:
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_bench_operator_scores_every_submission():
    out = _run("benchmarks/bench_operator.py", "--submissions", "6", "--sequential", "2")
    (row,) = [line.split() for line in out.splitlines() if line.split()[:1] == ["6"]]
    assert row[row.index("|") + 1] == "6" and row[-1] == "(Evaluated)"  # all 6 scored


@pytest.mark.parametrize(("script", "args", "rows", "ratio_column"), [
    ("benchmarks/bench_metrics.py", ["--rows", "2000", "--repeats", "1"],
     ["binary", "10", "regression"], "speed-up"),
    ("benchmarks/bench_predict.py", ["--rows", "500", "--frameworks", "sklearn,onnx", "--repeat", "1"],
     ["sklearn", "onnx"], "ratio"),
])
def test_other_benchmarks_print_a_ratio_per_scenario(script, args, rows, ratio_column):
    lines = _run(script, *args).splitlines()
    assert any(ratio_column in line.split() for line in lines)
    assert [line.split()[0] for line in lines if line.split()[:1] and line.split()[0] in rows] == rows


def test_bench_serving_prints_each_sections_figures():
    lines = _run("benchmarks/bench_serving.py", "--quick").splitlines()
    predictor = [line.split() for line in lines if line.split()[:2] in (["1", "|"], ["8", "|"])]
    assert [row[0] for row in predictor] == ["1", "8"] and all(float(row[-1]) > 0 for row in predictor)
    (added,) = [line for line in lines if line.startswith("router - direct")]
    assert "target < 1 ms p50:" in added and "ratio router/direct p50" in added
    paths = [line.split() for line in lines if line.split()[:1] in (["direct"], ["router"]) and "-" not in line]
    assert [(row[0], row[-1]) for row in paths] == [("direct", "0"), ("router", "0")]  # p50, p99, failures
    (swap,) = [[cell.strip() for cell in line.split("|")] for line in lines if line.startswith("Standard ")]
    header = [cell.strip() for cell in next(line for line in lines if line.startswith("mode ")).split("|")]
    row = dict(zip(header, swap, strict=True))
    assert row["outcome"] == "Promoted" and int(row["requests"].replace(",", "")) >= 300
    assert {"lr", "tree"} <= {part.split(":")[0] for part in row["answered by"].split()}
    assert row["target 0 of >= 10,000"].startswith(row["failed"].split()[0] + " of ")
