"""The job runner's side of :mod:`.server`: start the warm interpreter, fork containers from it.

A forked container looks like any other to :class:`~podium_operator.local.jobrunner.pod.PodRun`: it has a ``pid`` (a
session leader, so signals reach its whole group) and ``wait()`` returns its exit code as
:mod:`asyncio.subprocess` would (negative for a signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from podium_operator.local.zygote.server import TRUSTED_MODULES

log = logging.getLogger(__name__)

LOST = -9  # a container whose end went unseen (the zygote died) is reported as killed (SIGKILL)


class ZygoteGone(RuntimeError):
    """The warm interpreter is not running (any more): start containers the ordinary way."""


class ForkedContainer:
    def __init__(self, pid: int, ended: asyncio.Future[int]) -> None:
        self.pid = pid
        self._ended = ended

    async def wait(self) -> int:
        status = await asyncio.shield(self._ended)
        return os.waitstatus_to_exitcode(status) if status >= 0 else LOST


class Zygote:
    def __init__(self, env: Mapping[str, str], log_path: Path, modules: Sequence[str] = TRUSTED_MODULES) -> None:
        self.modules = tuple(modules)
        self.forked = 0  # containers started from the warm interpreter so far
        self._env = dict(env)
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._started: dict[str, asyncio.Future[int]] = {}
        self._ended: dict[str, asyncio.Future[int]] = {}
        self._ids = itertools.count()
        self._starting = asyncio.Lock()
        self._gone = False

    async def start(self) -> None:
        """Start the server (once; concurrent callers wait for the same start)."""
        async with self._starting:
            if self._ready is None:
                await self._start()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        ours, theirs = socket.socketpair()
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as output, theirs:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "podium_operator.local.zygote.server", str(theirs.fileno()), *self.modules,
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=self._env,
            )
        reader, self._writer = await asyncio.open_connection(sock=ours)
        self._reader_task = asyncio.create_task(self._read(reader))

    async def spawn(self, request: dict[str, Any]) -> ForkedContainer:
        """Fork a container (see :mod:`.server` for the request's keys); ZygoteGone if it cannot."""
        try:
            await self.start()  # on first use: runners that never run Podium's steps never pay for it
        except OSError as error:
            raise ZygoteGone(f"cannot start: {error}") from error
        assert self._ready is not None and self._writer is not None
        await asyncio.shield(self._ready)
        if self._gone:
            raise ZygoteGone("the warm interpreter exited")
        ident = str(next(self._ids))
        loop = asyncio.get_running_loop()
        started, ended = loop.create_future(), loop.create_future()
        self._started[ident], self._ended[ident] = started, ended
        try:
            self._writer.write(json.dumps({**request, "id": ident}).encode() + b"\n")
            await self._writer.drain()
            pid = await started
        except (OSError, ConnectionError) as error:
            self._ended.pop(ident, None)
            raise ZygoteGone(str(error)) from error
        finally:
            self._started.pop(ident, None)
        self.forked += 1
        return ForkedContainer(pid, ended)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if message.get("ready"):
                    assert self._ready is not None
                    self._ready.set_result(None)
                elif "pid" in message:
                    _settle(self._started.get(message["id"]), message["pid"])
                elif "status" in message:
                    _settle(self._ended.pop(message["id"], None), message["status"])
                elif "error" in message:
                    _fail(self._started.get(message["id"]), ZygoteGone(message["error"]))
        finally:
            self._gone = True
            gone = ZygoteGone("the warm interpreter exited")
            if self._ready is not None:
                _fail(self._ready, gone)
            for future in self._started.values():
                _fail(future, gone)
            for future in self._ended.values():
                _settle(future, -1)  # its children run on unwatched: the runner kills their groups
            self._ended.clear()
            log.info("the warm interpreter for trusted job steps stopped")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._process.wait(), 5)
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)


def _settle(future: asyncio.Future[int] | None, value: int) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any] | None, error: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: nobody may be waiting on it
