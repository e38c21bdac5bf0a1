"""e2e tests need a real cluster (kind + KServe + MinIO) from the current kubeconfig; skipped otherwise."""

from __future__ import annotations

import subprocess

import pytest


def _cluster_reachable() -> bool:
    try:
        probe = subprocess.run(
            ["kubectl", "cluster-info", "--request-timeout=5s"], capture_output=True, timeout=15
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cluster_reachable():
        return
    skip = pytest.mark.skip(reason="no cluster reachable")
    for item in items:
        item.add_marker(skip)
