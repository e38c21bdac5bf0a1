"""Memory limits as the kubelet sets them: one memory cgroup per container, where this machine allows.

A cgroup limits resident memory and the kernel OOM-kills the container when it is exceeded (exit
137, reason ``OOMKilled``), as in a cluster. The runner creates the cgroups below its own (cgroup v1
``memory``, or v2 when ``memory`` is delegated to its children), so it never touches anyone else's.
Where neither is possible, :mod:`.jobrunner.pod` falls back to ``RLIMIT_AS``, which limits address
space instead: frameworks that reserve much more than they touch need generous limits then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryTree:
    """The directory this runner makes container cgroups in, and the cgroup version it is."""

    path: Path
    version: Literal[1, 2]

    @property
    def name(self) -> str:
        return f"cgroup v{self.version} memory"


def own_memory_cgroup(proc_cgroup: str, mountinfo: str) -> MemoryTree | None:
    """Where this process's memory cgroup is mounted, from ``/proc/self/cgroup`` and ``mountinfo``."""
    v1_path = v2_path = None
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        root, mount_point = fields[3], fields[4]
        fstype, _, super_options = line.split(" - ", 1)[1].split()[:3]
        wanted = v1_path if fstype == "cgroup" and "memory" in super_options.split(",") else (
            v2_path if fstype == "cgroup2" else None)
        if wanted is None:
            continue
        relative = os.path.relpath(wanted, root) if wanted.startswith(root) else None
        if relative is None or relative.startswith(".."):
            continue  # our cgroup is not visible below this mount
        found = Path(mount_point) / relative if relative != "." else Path(mount_point)
        return MemoryTree(found, 1 if fstype == "cgroup" else 2)
    return None


def find_memory_tree() -> tuple[MemoryTree | None, str | None]:
    """This runner's tree for container cgroups, or None and why not (it must be able to make them)."""
    try:
        tree = own_memory_cgroup(Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text())
    except OSError as error:
        return None, f"cannot read this process's cgroups: {error}"
    if tree is None:
        return None, "no memory cgroup controller is mounted for this process"
    if tree.version == 2:
        try:
            delegated = "memory" in (tree.path / "cgroup.subtree_control").read_text().split()
        except OSError:
            delegated = False
        if not delegated:
            return None, f"cgroup v2 at {tree.path} does not delegate the memory controller to its children"
    probe = tree.path / "podium" / f"probe-{os.getpid()}"
    try:
        probe.mkdir(parents=True, exist_ok=True)
        probe.rmdir()
    except OSError as error:
        return None, f"cannot create memory cgroups below {tree.path}: {error.strerror}"
    return MemoryTree(tree.path / "podium", tree.version), None


class ContainerMemory:
    """One container's memory cgroup: create with its limit, join from the child, read OOM kills, remove."""

    def __init__(self, tree: MemoryTree, name: str, limit: int) -> None:
        self.tree = tree
        self.path = tree.path / name
        self.path.mkdir(parents=True, exist_ok=True)
        if tree.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
            with contextlib.suppress(OSError):  # no swapping past the limit either (when swap accounting is on)
                (self.path / "memory.memsw.limit_in_bytes").write_text(str(limit))
        else:
            (self.path / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):
                (self.path / "memory.swap.max").write_text("0")

    def join(self) -> None:
        """Move the calling process into the cgroup (a ``preexec_fn``: the child joins before exec)."""
        with open(self.path / "cgroup.procs", "w") as procs:
            procs.write(str(os.getpid()))

    def oom_kills(self) -> int:
        counters = self.path / ("memory.oom_control" if self.tree.version == 1 else "memory.events")
        try:
            for line in counters.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self, wait: float = 2.0) -> None:
        """Remove the cgroup once its last process is gone (the kernel refuses while any remains)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if time.monotonic() >= deadline:
                    log.warning("memory cgroup %s not removed: %s", self.path, error.strerror)
                    return
                time.sleep(0.02)
