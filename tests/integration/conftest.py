"""Integration fixtures: the real operator (a `python -m podium_operator` process) against the API emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

from podium.api.crdgen import write_crds
from podium_operator.local.apiserver import ApiServer


class Operator:
    """The operator as a child process, restartable and killable like a pod."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "podium_operator"], env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )

    def stop(self, *, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def cluster_api(tmp_path: Path) -> Iterator[ApiServer]:
    with ApiServer(crd_paths=write_crds(tmp_path / "crds")) as server:
        yield server


@pytest.fixture
def custom_objects(cluster_api: ApiServer) -> kubernetes.client.CustomObjectsApi:
    config = kubernetes.client.Configuration()
    config.host = cluster_api.url
    return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))


@pytest.fixture
def operator(cluster_api: ApiServer, tmp_path: Path) -> Iterator[Operator]:
    kubeconfig = cluster_api.write_kubeconfig(tmp_path / "kubeconfig")
    running = Operator({**os.environ, "KUBECONFIG": str(kubeconfig)}, tmp_path / "operator.log")
    running.start()
    yield running
    running.stop()
