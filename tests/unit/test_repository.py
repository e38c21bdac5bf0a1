"""The README's quick-start commands exist, CI runs exactly the test command, make targets are defined."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```(?:bash|sh|console)\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_starts_with_demo_and_test_commands():
    assert _readme_commands()[:2] == ["make demo", "make test"]


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == "make test"


def test_make_targets_exist_and_do_what_the_readme_says():
    for target in ("demo", "test", "crds", "lint", "e2e"):
        dry_run = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True)
        assert dry_run.returncode == 0, dry_run.stderr
    assert "examples/demo.py" in subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True).stdout
    assert "pytest" in subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True).stdout
