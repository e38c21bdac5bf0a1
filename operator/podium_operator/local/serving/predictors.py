"""Predictor processes: one ``python -m podium.serving`` per revision, polled until ready, drained when dropped.

A process is a session leader (killing it kills what it spawned) on a free loopback port, with the model's
``env`` on top of a few host variables (``PATH``, ``LANG``; never credentials: the artifact was fetched
before, by :mod:`.storage`). Readiness is KServe's: ``GET /v1/models/<name>`` answers 200. A process that
exits before that is ``Failed`` with the last lines of its output; one that exits later is restarted (as
a kubelet restarts a container), after a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import aiohttp

from podium_operator.local.serving.revisions import FAILED, READY, STARTING, Instance, State

DEFAULT_COMMAND = (sys.executable, "-m", "podium.serving")
# kserve flags every predictor gets: no gRPC server (its fixed port 8081 would clash), no per-request log line.
SERVER_FLAGS = ("--enable_grpc", "false", "--enable_latency_logging", "false")
HOST_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "HOME")
FAILURE_LINES = 20
log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def host_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    env = {k: environ[k] for k in HOST_ENV if k in environ}
    env.setdefault("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    env.setdefault("HOME", "/tmp")
    return env


def tail(path: Path, lines: int = FAILURE_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class Predictor:
    """One instance's process; :meth:`run` supervises it until cancelled (then it is stopped)."""

    def __init__(self, instance: Instance, model_dir: Path, log_path: Path, *, command: Sequence[str],
                 base_env: Mapping[str, str], on_change: Callable[[], None], grace: float = 5.0,
                 ready_gate: Callable[[str], Awaitable[None]] | None = None) -> None:
        """``ready_gate(address)``, if given, is awaited between the model's readiness and the first request
        (the controller's waits until Prometheus has scraped it once, so that no request goes uncounted)."""
        self.instance = instance
        self.model_dir = model_dir
        self.log_path = log_path
        self.command = tuple(command)
        self.base_env = dict(base_env)
        self.state = State()
        self.in_flight = 0  # requests the router has sent and not yet had answered
        self.restarts = 0
        self._on_change = on_change
        self._grace = grace
        self._process: asyncio.subprocess.Process | None = None
        self._ready_gate = ready_gate
        self.address: str | None = None  # host:port while a process runs (a Prometheus target from the start)

    def _set(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self._on_change()

    def argv(self, port: int) -> list[str]:
        return [*self.command, "--model_name", self.instance.model.name, "--model_dir", str(self.model_dir),
                "--http_port", str(port), *SERVER_FLAGS]

    async def run(self, session: aiohttp.ClientSession) -> None:
        try:
            while True:
                ready = await self._run_once(session)
                if not ready:
                    return  # never got ready: Failed, until the spec changes
                self.restarts += 1
                self._set(State(STARTING))
                await asyncio.sleep(min(10.0, 0.5 * 2 ** min(self.restarts, 5)))
        finally:
            await self._kill()

    async def _run_once(self, session: aiohttp.ClientSession) -> bool:
        port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**self.base_env, **dict(self.instance.model.env), "PODIUM_HTTP_HOST": "127.0.0.1"}  # loopback only
        with self.log_path.open("ab") as out:
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *self.argv(port), env=env, stdout=out, stderr=out, stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True)
            except OSError as e:
                self._set(State(FAILED, message=f"cannot start the predictor: {e}", exit_code=128))
                return False
        process = self._process
        self.address = f"127.0.0.1:{port}"
        self._on_change()
        try:
            return await self._supervise(session, process, port)
        finally:
            self.address = None

    async def _supervise(self, session: aiohttp.ClientSession, process: asyncio.subprocess.Process,
                         port: int) -> bool:
        url = f"http://127.0.0.1:{port}"
        ready_url = f"{url}/v1/models/{self.instance.model.name}"
        exited = asyncio.create_task(process.wait())
        while not exited.done():
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with session.get(ready_url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        break
            await asyncio.wait({exited}, timeout=0.1)
        if exited.done():
            self._set(State(FAILED, message=tail(self.log_path) or "the predictor exited before it was ready",
                            exit_code=process.returncode))
            return False
        if self._ready_gate is not None and self.address is not None:
            await self._ready_gate(self.address)
        self._set(State(READY, url=url))
        code = await exited
        log.warning("Predictor %s exited (code %s) after it was ready; restarting", self.instance.id, code)
        return True

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until the requests in flight are answered (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _kill(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), self._grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
