"""The training Job's progress reports: at a bounded rate, whatever the training loop's pace."""

from __future__ import annotations

import json
from pathlib import Path

from podium.training.report import Reporter
from podium.training.wire import ProgressReport


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_fast_loop_writes_at_most_one_report_per_interval_and_the_last_always(tmp_path: Path) -> None:
    clock, target = Clock(), tmp_path / "progress.json"
    reporter = Reporter(str(target), interval=10.0, algorithm="maml", device="cpu", clock=clock)
    for iteration in range(1, 1001):  # 1,000 iterations over 50 s
        clock.now = iteration * 0.05
        reporter.update(state="training", iteration=iteration, iterations=1000, loss=1.0 / iteration)
    assert reporter.writes == 5  # t = 0.05, 10.05, 20.05, ... : not one write per step
    reporter.update(state="done", force=True)
    report = ProgressReport.from_json(target.read_bytes())
    assert (report.state, report.iteration, report.algorithm, report.device) == ("done", 1000, "maml", "cpu")
    assert json.loads(target.read_text())["loss"] == 0.001  # the latest values, even those not written in time


def test_a_report_that_cannot_be_written_does_not_stop_training(tmp_path: Path) -> None:
    reporter = Reporter(str(tmp_path / "a-file" / "x"), interval=0, algorithm="maml", device="cpu")
    (tmp_path / "a-file").write_text("not a directory")
    assert reporter.update(iteration=1) is True and reporter.writes == 0
