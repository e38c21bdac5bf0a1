"""What a kubelet caps for each container: memory and processes (see :mod:`podium_operator.local.cgroups`).

``limits.memory`` becomes a memory cgroup (else ``RLIMIT_AS``). Every container gets the runner's
pids limit, as a kubelet's ``podPidsLimit`` applies to every pod: a pids cgroup (``fork`` fails
with ``EAGAIN`` past it), else ``RLIMIT_NPROC``, which the kernel counts per user across the
machine (so the processes the container's user already has count against it: the limit is set
that many above the limit) and does not apply to root. :class:`Limits` says which, once per runner.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from podium_operator.local.cgroups import (
    CgroupTree,
    ContainerCgroup,
    ContainerMemory,
    ContainerPids,
    find_tree,
)

log = logging.getLogger(__name__)

DEFAULT_PIDS_LIMIT = 1024  # as a kubelet's podPidsLimit is usually set


@dataclass(frozen=True)
class Limits:
    """The runner's means of limiting containers (found once, when it starts)."""

    memory: CgroupTree | None = None  # None: RLIMIT_AS
    pids: CgroupTree | None = None  # None: RLIMIT_NPROC, for containers not running as root
    pids_limit: int | None = DEFAULT_PIDS_LIMIT  # None: processes are not limited
    memory_why: str | None = None  # why there is no memory tree
    pids_why: str | None = None

    @classmethod
    def find(cls, *, memory_cgroups: bool, pids_cgroups: bool, pids_limit: int | None) -> Limits:
        memory, memory_why = find_tree("memory") if memory_cgroups else (None, "memory cgroups turned off")
        pids, pids_why = (None, "no pids limit (pids_limit=None)") if pids_limit is None else (
            find_tree("pids") if pids_cgroups else (None, "pids cgroups turned off"))
        return cls(memory, pids, pids_limit, memory_why, pids_why)

    @property
    def memory_mechanism(self) -> str:
        if self.memory is not None:
            return self.memory.name
        return f"RLIMIT_AS (address space, not resident memory): {self.memory_why}"

    @property
    def pids_mechanism(self) -> str:
        if self.pids_limit is None:
            return f"none: {self.pids_why}"
        if self.pids is not None:
            return f"{self.pids.name} ({self.pids_limit} per container)"
        return (f"RLIMIT_NPROC ({self.pids_limit} above what the container's user runs already, "
                f"shared by that user's containers; root containers are not limited): {self.pids_why}")  # fmt: skip

    @property
    def pids_unsupported(self) -> str | None:
        """None when each container's processes are capped on their own (a pids cgroup), else why not."""
        return None if self.pids is not None or self.pids_limit is None else self.pids_mechanism


class ContainerLimits:
    """One container's cgroups and rlimits. Blocking (cgroup files): create and remove it in a thread."""

    def __init__(self, limits: Limits, name: str, memory_limit: int | None, uid: int) -> None:
        self.memory_limit = memory_limit
        self.memory = ContainerMemory(limits.memory, name, memory_limit) if (
            memory_limit is not None and limits.memory is not None) else None
        self.pids = ContainerPids(limits.pids, name, limits.pids_limit) if (
            limits.pids is not None and limits.pids_limit is not None) else None
        self.nproc: int | None = None
        if self.pids is None and limits.pids_limit is not None:
            if uid == 0:
                log.warning("Container %s runs as root: RLIMIT_NPROC cannot limit its processes", name)
            else:
                self.nproc = user_tasks(uid) + limits.pids_limit

    @property
    def cgroups(self) -> list[ContainerCgroup]:
        return [c for c in (self.memory, self.pids) if c is not None]

    @property
    def rlimit_as(self) -> int | None:
        """The address-space cap the container gets instead of a memory cgroup."""
        return self.memory_limit if self.memory is None else None

    def preexec(self) -> Callable[[], None] | None:
        """What a new process does before exec: join the cgroups, take the rlimits."""
        if not self.cgroups and self.rlimit_as is None and self.nproc is None:
            return None
        cgroups, address_space, nproc = self.cgroups, self.rlimit_as, self.nproc

        def apply() -> None:
            for cgroup in cgroups:
                cgroup.join()
            if address_space is not None:
                resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            if nproc is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        return apply

    def forkable(self) -> tuple[bool, str | None]:
        """Whether the warm interpreter may fork the container, and the one cgroup it joins there.

        A forked child takes no rlimits (the warm interpreter maps more than most memory limits);
        the other cgroup, on cgroup v1, is joined through :meth:`adopt` once it runs.
        """
        if self.rlimit_as is not None:
            return False, None
        first = self.memory or self.pids
        return True, str(first.path) if first is not None else None

    def adopt(self, pid: int) -> None:
        """Move a forked container into the cgroups it did not join itself (see :meth:`forkable`)."""
        joined = self.memory or self.pids
        for cgroup in self.cgroups:
            if cgroup is not joined and cgroup.path != getattr(joined, "path", None):
                cgroup.adopt(pid)

    def oom_kills(self) -> int:
        return self.memory.oom_kills() if self.memory is not None else 0

    def remove(self) -> None:
        for cgroup in self.cgroups:
            cgroup.remove()


def user_tasks(uid: int, proc: Path = Path("/proc")) -> int:
    """Processes and threads whose real user is ``uid``: what ``RLIMIT_NPROC`` counts."""
    count = 0
    for status in proc.glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
        except (OSError, ValueError, KeyError):
            continue  # gone meanwhile
    return count
