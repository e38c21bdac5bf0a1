"""Run one pod's containers as local process groups, as a kubelet would (``restartPolicy: Never``).

Init containers run one after another, then all main containers at once. Each container is
a session leader (``setsid``), so that killing it kills everything it spawned, started in its
sandbox by a :class:`~podium_operator.local.sandbox.confiner.Confiner`, with its limits (:mod:`.limits`).
Every state change is reported through ``publish`` as a complete pod ``status``.

Nothing that grows with a pod runs on the event loop: preparing its volumes (sized file
systems, :mod:`.volumes`; the ``fsGroup`` walk, linear in their files), its cgroups and reading
what its containers left all run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from podium_operator.local.jobrunner.limits import ContainerLimits, Limits
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
from podium_operator.local.jobrunner.volumes import VolumeFilesystems
from podium_operator.local.podspec.plan import ContainerPlan, PlanError, PodPlan
from podium_operator.local.sandbox.confiner import Confiner, SandboxUnavailable
from podium_operator.local.zygote.client import ForkedContainer, Zygote, ZygoteGone
from podium_operator.local.zygote.server import trusted_module

Sandbox = Callable[[ContainerPlan], ContainerPlan]
Process = asyncio.subprocess.Process | ForkedContainer
Publish = Callable[[dict[str, Any]], Awaitable[None]]
START_ERROR_CODE = 128  # what the kubelet reports when a container cannot start
T = TypeVar("T")
log = logging.getLogger(__name__)


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
        limits: Limits | None = None,
        volumes: VolumeFilesystems | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        first = "PodInitializing" if pod_spec.get("initContainers") else "ContainerCreating"
        self._init = _infos(pod_spec.get("initContainers", []), Waiting("PodInitializing"))
        self._main = _infos(pod_spec.get("containers", []), Waiting(first))
        self._publish_fn = publish
        self._publish_lock = asyncio.Lock()
        self._sandbox = sandbox
        self._confiner = confiner
        self._limits = limits or Limits(pids_limit=None)  # (by default: RLIMIT_AS, no pids limit)
        self._volumes = volumes  # sized volumes' file systems; None: plain directories
        self._claimed: PodPlan | None = None
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
                await _in_thread(self._prepare, plan)
            except SandboxUnavailable as e:  # a restriction this machine cannot enforce: fail closed
                await self._fail_to_start(str(e))
                return False
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
            if self._claimed is not None and self._volumes is not None:
                await _in_thread(self._volumes.release, self._claimed)

    def _prepare(self, plan: PodPlan) -> None:
        """Mount the pod's sized volumes, then create its directories and apply ``fsGroup`` (blocking)."""
        if self._volumes is not None:
            self._claimed = plan  # its claims count as in use from now on, until released
            self._volumes.mount(plan)
        self._confiner.prepare(plan)

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
        spec = await asyncio.to_thread(self._confiner.sandbox_spec, c, pod)
        user = (spec or {}).get("user")
        uid = int(user[0]) if user else os.geteuid()
        limits = None
        started = _now()
        try:
            limits = await _in_thread(ContainerLimits, self._limits, f"{pod.namespace}.{pod.name}.{c.name}",
                                      c.memory_limit, uid)  # fmt: skip
            process = await self._launch(c, pod, spec, limits)
        except (OSError, subprocess.SubprocessError) as e:  # (the latter: joining a cgroup failed)
            if limits is not None:
                await asyncio.to_thread(limits.remove)
            message = f"failed to start container {c.name!r} ({c.argv[0]}): {e}"
            table[c.name] = _info(table[c.name], Terminated(START_ERROR_CODE, "StartError", _now(), message=message))
            await self._publish()
            return False
        self._processes.add(process)
        try:
            table[c.name] = _info(table[c.name], Running(started))
            await self._publish()
            returncode = await process.wait()
        except asyncio.CancelledError:  # the pod is going: so do the container and its cgroups
            _signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.shield(process.wait())
            await asyncio.shield(asyncio.to_thread(limits.remove))
            raise
        self._processes.discard(process)
        _signal_group(process.pid, signal.SIGKILL)  # a container ends with its main process
        state = await asyncio.to_thread(self._ended, c, limits, returncode, started, self.killed_for)
        table[c.name] = _info(table[c.name], state)
        await self._publish()
        return returncode == 0

    @staticmethod
    def _ended(
        c: ContainerPlan, limits: ContainerLimits, returncode: int, started: datetime, killed_for: str | None
    ) -> Terminated:
        """The container's final state; its cgroups removed (blocking)."""
        if limits.memory is not None:
            oom = limits.oom_kills() > 0
        else:  # under RLIMIT_AS running out of memory is a failed allocation, reported in the log
            oom = c.memory_limit is not None and looks_like_oom(_read_tail(c.log_path, FALLBACK_LOG_BYTES))
        limits.remove()
        return _terminated(c, returncode, started, killed_for, oom)

    async def _launch(
        self, c: ContainerPlan, pod: PodPlan, spec: dict[str, Any] | None, limits: ContainerLimits
    ) -> Process:
        """Fork ``c`` from the warm interpreter when it runs one of Podium's steps, else start a process."""
        module = trusted_module(c.argv, sys.executable, self._zygote.modules) if self._zygote is not None else None
        forkable, cgroup = limits.forkable()
        if self._zygote is not None and module is not None and forkable:
            with contextlib.suppress(ZygoteGone):  # then start it the ordinary way
                process = await self._zygote.spawn({
                    "module": module, "args": list(c.argv[3:]), "env": dict(c.env), "cwd": str(c.cwd),
                    "log": str(c.log_path), "cgroup": cgroup, "sandbox": spec,
                })  # fmt: skip
                try:
                    await asyncio.to_thread(limits.adopt, process.pid)
                except OSError as e:  # (ended already, say)
                    log.warning("Container %s: not moved into its cgroups: %s", c.name, e)
                return process
        argv, cwd = self._confiner.wrap(c, spec)
        with open(c.log_path, "ab", opener=_private) as log_file:  # the child keeps its own descriptor
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=dict(c.env),
                cwd=cwd,
                start_new_session=True,
                preexec_fn=limits.preexec(),
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


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a thread, which a cancellation waits for (it would go on running meanwhile)."""
    future = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


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
