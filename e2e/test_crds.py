"""On a real cluster: the CRDs install, and the API server enforces the same rules as `podium validate`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=check, timeout=120)


def test_crds_apply_and_examples_validate_server_side():
    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    for example in sorted((REPO / "examples").glob("*.yaml")):
        kubectl("apply", "--dry-run=server", "-f", str(example))


def test_invalid_examples_are_rejected_by_cel_rules():
    for example in sorted((REPO / "examples/invalid").glob("*.yaml")):
        result = kubectl("apply", "--dry-run=server", "-f", str(example), check=False)
        assert result.returncode != 0, f"{example.name} was accepted by the API server"
