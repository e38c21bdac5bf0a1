"""The README's quick-start commands exist, CI runs exactly the test command, make targets are defined."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_make_test_lints_before_it_runs_the_suite():
    """CI runs only `make test`: a type error or a broken import contract must fail it too."""
    plan = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True).stdout
    positions = {tool: plan.find(tool) for tool in ("ruff check", "mypy", "lint-imports", "pytest")}
    assert all(position >= 0 for position in positions.values()), positions
    assert max(positions["ruff check"], positions["mypy"], positions["lint-imports"]) < positions["pytest"]


def test_import_contracts_hold_transitively():
    text = (REPO / "pyproject.toml").read_text()
    assert "allow_indirect_imports" not in text
    assert text.count("[[tool.importlinter.contracts]]") >= 8


SOURCE_ROOTS = (REPO / "sdk" / "podium", REPO / "operator" / "podium_operator")
MAX_MODULE_LINES = 400


def test_no_module_is_over_the_size_limit():
    too_long = {str(path.relative_to(REPO)): n for root in SOURCE_ROOTS for path in root.rglob("*.py")
                if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"split these modules (> {MAX_MODULE_LINES} lines): {too_long}"


def test_every_package_says_its_role_in_one_line():
    import ast

    for root in SOURCE_ROOTS:
        for init in root.rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc, f"{init.relative_to(REPO)}: add a one-line docstring saying what the package is for"
            lines = doc.splitlines()
            assert len(lines) == 1 or not lines[1].strip(), (
                f"{init.relative_to(REPO)}: start the package docstring with one summary line of its role")


def test_the_sdk_loads_without_the_operator_package():
    """`podium` (client, CLI parser, evaluation steps) runs where only the SDK is installed."""
    code = ("import sys, podium.client, podium.api.validation, podium.evaluation.score, podium.evaluation.predict\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('podium_operator', 'kopf'))\n"
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
