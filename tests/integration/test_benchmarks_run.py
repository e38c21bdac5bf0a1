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


def test_bench_automl_quick_prints_each_target_beside_its_baseline():
    lines = _run("benchmarks/bench_automl.py", "--quick").splitlines()
    (header,) = [line for line in lines if line.startswith("(a) recommendation quality")]
    assert int(header.split("over ")[1].split()[0]) >= 12  # leave-one-out over at least 12 data sets
    (top1,) = [line for line in lines if line.startswith("top-1 recommended")]
    assert "random choice (expected)" in top1 and "x | target >= 2x random: " in top1
    searches = [line.split() for line in lines if line.split()[-1:] in (["yes"], ["no"]) and len(line.split()) == 7]
    assert len(searches) == 5 and all(float(row[1]) > 0 and float(row[2]) > 0 for row in searches)
    (tpe,) = [line for line in lines if line.startswith("TPE >= random on")]
    assert "of 5 data sets | target >= 4 of 5: " in tpe


def test_bench_metalearning_quick_prints_each_sections_figure_and_target():
    lines = _run("benchmarks/bench_metalearning.py", "--quick", "--device", "cpu").splitlines()
    cells = [[c.strip() for c in line.split("|")] for line in lines if "|" in line]
    sine = {row[0]: row for row in cells if row[0] in ("5", "10")}
    assert sorted(sine) == ["10", "5"]
    for k, target in (("5", "<= 0.32"), ("10", "<= 0.12")):
        assert sine[k][4] == target and float(sine[k][1].split("±")[0]) > 0 and float(sine[k][2].split("±")[0]) > 0
        assert sine[k][-1] in ("reached", "not reached")
    fewshot = {(row[0], row[2]): row for row in cells if row[0] in ("font-glyphs", "rotated-digits")}
    methods = {"maml", "fomaml", "reptile", "protonet", "finetune", "pixels"}
    assert set(fewshot) == {(data, m) for data in ("font-glyphs", "rotated-digits") for m in methods}
    assert all(0 <= float(row[3].split("±")[0]) <= 100 for row in fewshot.values())
    for method in ("maml", "protonet"):
        row = fewshot[("font-glyphs", method)]
        assert row[5] == ">= 95" and row[-1].split("(")[0].strip() in ("reached", "not reached")
    assert fewshot[("font-glyphs", "maml")][4] == "98.7"  # the Omniglot anchor beside the figure
    speed = {row[0]: row for row in cells if row[0] in ("loop", "vmap")}
    assert sorted(speed) == ["loop", "vmap"] and all(float(row[1]) > 0 for row in speed.values())
    (ratio,) = [row for row in cells if row[0].startswith("vmap/loop tasks/s ratio")]
    assert float(ratio[0].split()[-1]) > 0 and ratio[1] == "target >= 3x" and ratio[-1] in ("reached", "not reached")
