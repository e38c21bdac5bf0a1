"""A real Prometheus (Debian's ``/usr/bin/prometheus``) scraping local mode's serving targets every second.

Targets come from a file_sd JSON file that :meth:`Prometheus.set_targets` rewrites atomically (Prometheus
watches it): each predictor with labels ``namespace``, ``inference_service``, ``revision`` (job
``podium-predictor``), and the serving controller (job ``podium-serving``, the routers' metrics). The routers'
own ``/metrics`` are not scraped: they are the predictors' samples again, and would count every request twice.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from podium_operator.local.serving.predictors import free_port

BINARY = "/usr/bin/prometheus"
log = logging.getLogger(__name__)


def find_binary(path: str = BINARY) -> str | None:
    if Path(path).is_file():
        return path
    return shutil.which("prometheus")


def config(targets_file: Path, interval: str = "1s") -> str:
    """The Prometheus configuration: one file_sd job (``job`` comes from the targets' labels)."""
    document = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [{"job_name": "podium-local", "honor_labels": True,
                            "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": interval}]}],
    }
    return json.dumps(document, indent=1)  # JSON is YAML


def target_groups(targets: Iterable[tuple[str, Mapping[str, str]]]) -> list[dict[str, object]]:
    """file_sd groups from ``(host:port, labels)`` pairs."""
    return [{"targets": [address], "labels": dict(labels)} for address, labels in targets]


class Prometheus:
    """``start()`` runs Prometheus on a free loopback port with its data in ``workdir``; ``url`` then answers."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir = workdir
        self.binary = binary
        self.targets_file = workdir / "targets.json"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.set_targets([])
        (self.workdir / "prometheus.yml").write_text(config(self.targets_file))
        self.port = free_port()
        log_file = (self.workdir / "prometheus.log").open("ab")
        self._process = subprocess.Popen(
            [self.binary, f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn", "--storage.tsdb.retention.time=1d"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited with code {self._process.returncode}; "
                                   f"see {self.workdir / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"prometheus not ready after {timeout:.0f}s; see {self.workdir / 'prometheus.log'}")

    def set_targets(self, targets: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        partial = self.targets_file.with_name(".targets.json.partial")
        partial.write_text(json.dumps(target_groups(targets)))
        partial.replace(self.targets_file)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
