"""Run one pod's containers as local process groups, as a kubelet would (``restartPolicy: Never``).

Init containers run one after another, then all main containers at once. Each container is
a session leader (``setsid``), so that killing it kills everything it spawned, started in its
sandbox by a :class:`~podium_operator.local.sandbox.confiner.Confiner`. Every state change is reported through ``publish``
as a complete pod ``status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from podium_operator.local.cgroups import ContainerMemory, MemoryTree
from podium_operator.local.jobrunner.status import (
    FALLBACK_LOG_BYTES,
    MAX_MESSAGE_BYTES,
    ContainerInfo,
    Running,
    Terminated,
    Waiting,
    exit_code,
    looks_like_oom,
    pod_status,
    terminated_reason,
    termination_message,
)
from podium_operator.local.podspec.plan import ContainerPlan, PlanError, PodPlan
from podium_operator.local.sandbox.confiner import Confiner
from podium_operator.local.zygote.client import ForkedContainer, Zygote, ZygoteGone
from podium_operator.local.zygote.server import trusted_module

Sandbox = Callable[[ContainerPlan], ContainerPlan]
Process = asyncio.subprocess.Process | ForkedContainer
Publish = Callable[[dict[str, Any]], Awaitable[None]]
START_ERROR_CODE = 128  # what the kubelet reports when a container cannot start


class PodRun:
    """One attempt of a pod: :meth:`run` it once; :meth:`kill` may be called at any time."""

    def __init__(
        self,
        pod_spec: Mapping[str, Any],
        publish: Publish,
        confiner: Confiner,
        *,
        sandbox: Sandbox | None = None,
        max_grace: float = 2.0,
        memory: MemoryTree | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        first = "PodInitializing" if pod_spec.get("initContainers") else "ContainerCreating"
        self._init = _infos(pod_spec.get("initContainers", []), Waiting("PodInitializing"))
        self._main = _infos(pod_spec.get("containers", []), Waiting(first))
        self._publish_fn = publish
        self._publish_lock = asyncio.Lock()
        self._sandbox = sandbox
        self._confiner = confiner
        self._memory = memory  # memory cgroups for limits; None: RLIMIT_AS
        self._zygote = zygote  # a warm interpreter for Podium's own steps; None: always exec
        self._grace = max_grace
        self._max_grace = max_grace
        self._start = _now()
        self._processes: set[Process] = set()
        self._message: str | None = None
        self.killed_for: str | None = None

    async def run(self, make_plan: Callable[[], Awaitable[PodPlan]]) -> bool:
        """Plan, run all containers, report the outcome; True when the pod succeeded."""
        try:
            await self._publish()
            try:
                plan = await make_plan()
            except PlanError as e:
                await self._fail_to_start(str(e))
                return False
            self._grace = min(plan.grace_seconds, self._max_grace)
            try:
                self._confiner.prepare(plan)
            except OSError as e:
                await self._fail_to_start(f"cannot prepare the pod's volumes: {e}")
                return False
            if await self._run_init(plan):
                results = await asyncio.gather(*(self._run(plan, c, self._main) for c in plan.containers))
                return all(results) and self.killed_for is None
            return False
        finally:
            self._signal_all(signal.SIGKILL)  # cancelled or not, leave no process behind
            await asyncio.gather(*(p.wait() for p in self._processes))

    def kill(self, reason: str, message: str) -> None:
        """Stop the pod: SIGTERM every container, SIGKILL after the grace period."""
        if self.killed_for is not None:
            return
        self.killed_for, self._message = reason, message
        self._signal_all(signal.SIGTERM)
        asyncio.get_running_loop().call_later(self._grace, self._signal_all, signal.SIGKILL)

    async def _run_init(self, plan: PodPlan) -> bool:
        for c in plan.init_containers:
            if not await self._run(plan, c, self._init):
                return False
        return True

    async def _run(self, pod: PodPlan, plan: ContainerPlan, table: dict[str, ContainerInfo]) -> bool:
        if self.killed_for is not None:
            return False  # killed before its turn: it stays Waiting
        c = self._sandbox(plan) if self._sandbox else plan
        spec = self._confiner.sandbox_spec(c, pod)
        memory = None
        if c.memory_limit is not None and self._memory is not None:
            memory = ContainerMemory(self._memory, f"{pod.namespace}.{pod.name}.{c.name}", c.memory_limit)
        started = _now()
        try:
            process = await self._launch(c, pod, spec, memory)
        except OSError as e:
            if memory is not None:
                await asyncio.to_thread(memory.remove)
            message = f"failed to start container {c.name!r} ({c.argv[0]}): {e}"
            table[c.name] = _info(table[c.name], Terminated(START_ERROR_CODE, "StartError", _now(), message=message))
            await self._publish()
            return False
        self._processes.add(process)
        table[c.name] = _info(table[c.name], Running(started))
        await self._publish()
        returncode = await process.wait()
        self._processes.discard(process)
        _signal_group(process.pid, signal.SIGKILL)  # a container ends with its main process
        if memory is not None:
            oom = memory.oom_kills() > 0
            await asyncio.to_thread(memory.remove)
        else:  # under RLIMIT_AS running out of memory is a failed allocation, reported in the log
            oom = c.memory_limit is not None and looks_like_oom(_read_tail(c.log_path, FALLBACK_LOG_BYTES))
        table[c.name] = _info(table[c.name], _terminated(c, returncode, started, self.killed_for, oom))
        await self._publish()
        return returncode == 0

    async def _launch(
        self, c: ContainerPlan, pod: PodPlan, spec: dict[str, Any] | None, memory: ContainerMemory | None
    ) -> Process:
        """Fork ``c`` from the warm interpreter when it runs one of Podium's steps, else start a process."""
        module = trusted_module(c.argv, sys.executable, self._zygote.modules) if self._zygote is not None else None
        # A forked child cannot take RLIMIT_AS: the warm interpreter already maps more than most limits.
        if self._zygote is not None and module is not None and (memory is not None or c.memory_limit is None):
            with contextlib.suppress(ZygoteGone):  # then start it the ordinary way
                return await self._zygote.spawn({
                    "module": module, "args": list(c.argv[3:]), "env": dict(c.env), "cwd": str(c.cwd),
                    "log": str(c.log_path), "cgroup": str(memory.path) if memory else None, "sandbox": spec,
                })  # fmt: skip
        argv, cwd = self._confiner.wrap(c, spec)
        with open(c.log_path, "ab", opener=_private) as log:  # the child keeps its own descriptor
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(c.env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=memory.join if memory is not None else _memory_limiter(c.memory_limit),
            )

    async def _fail_to_start(self, message: str) -> None:
        state = Terminated(START_ERROR_CODE, "StartError", _now(), message=message)
        for table in (self._init, self._main):
            for name, info in table.items():
                table[name] = _info(info, state)
        self._message = message
        await self._publish()

    async def _publish(self) -> None:
        async with self._publish_lock:  # statuses must reach the API in the order they happen
            status = pod_status(
                init=list(self._init.values()),
                main=list(self._main.values()),
                start_time=self._start,
                reason=self.killed_for,
                message=self._message,
            )
            await self._publish_fn(status)

    def _signal_all(self, sig: signal.Signals) -> None:
        for process in self._processes:
            _signal_group(process.pid, sig)


def _terminated(
    c: ContainerPlan, returncode: int, started: datetime, killed_for: str | None, oom: bool
) -> Terminated:
    code, sig = exit_code(returncode)
    tail = _read_tail(c.log_path, FALLBACK_LOG_BYTES)
    reason = terminated_reason(code, killed_for=killed_for if code != 0 else None, oom=oom)
    message = termination_message(
        _read_head(c.termination_log, MAX_MESSAGE_BYTES), tail, code=code, fallback_to_logs=c.fallback_to_logs
    )
    return Terminated(code, reason, _now(), started_at=started, message=message, signal=sig)


def _memory_limiter(limit: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` capping the address space (the fallback when no memory cgroup can be made)."""
    if limit is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _read_head(path: Path, size: int) -> bytes:
    """The start of a file the container wrote; never through a link it may have planted there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    with open(fd, "rb") as f:
        info = os.fstat(fd)
        return f.read(size) if stat.S_ISREG(info.st_mode) and info.st_nlink == 1 else b""


def _read_tail(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read()
    except OSError:
        return b""


def _infos(containers: list[Mapping[str, Any]], state: Waiting) -> dict[str, ContainerInfo]:
    return {c["name"]: ContainerInfo(c["name"], c.get("image", ""), state) for c in containers}


def _info(info: ContainerInfo, state: Running | Terminated) -> ContainerInfo:
    return ContainerInfo(info.name, info.image, state)


def _now() -> datetime:
    return datetime.now(UTC)
