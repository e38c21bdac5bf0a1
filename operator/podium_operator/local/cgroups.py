"""Memory and pids limits as the kubelet sets them: cgroups per container, where this machine allows.

A memory cgroup limits resident memory and the kernel OOM-kills the container when it is exceeded
(exit 137, reason ``OOMKilled``), as in a cluster; a pids cgroup caps the container's processes and
threads (``fork`` fails with ``EAGAIN`` past it, as under a kubelet's ``podPidsLimit``). The runner
creates the cgroups below its own (cgroup v1, or v2 when the controller is delegated to its
children), so it never touches anyone else's. Where that is not possible, :mod:`.jobrunner.limits`
falls back to rlimits: ``RLIMIT_AS`` (address space: frameworks that reserve much more than they
touch need generous limits then) and ``RLIMIT_NPROC`` (per user rather than per container).
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

Controller = Literal["memory", "pids"]
# A file every cgroup of the controller has: what shows that a new cgroup got the controller.
_LIMIT_FILE = {("memory", 1): "memory.limit_in_bytes", ("memory", 2): "memory.max",
               ("pids", 1): "pids.max", ("pids", 2): "pids.max"}  # fmt: skip


@dataclass(frozen=True)
class CgroupTree:
    """The directory this runner makes container cgroups of ``controller`` in, and its cgroup version."""

    path: Path
    version: Literal[1, 2]
    controller: Controller = "memory"

    @property
    def name(self) -> str:
        return f"cgroup v{self.version} {self.controller}"


def own_cgroup(proc_cgroup: str, mountinfo: str, controller: Controller = "memory") -> CgroupTree | None:
    """Where this process's cgroup of ``controller`` is mounted, from ``/proc/self/cgroup`` and ``mountinfo``.

    A v1 hierarchy of the controller wins; else the v2 one (whether it has the controller is
    for :func:`find_tree` to check).
    """
    v1_path = v2_path = None
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif controller in controllers.split(","):
            v1_path = path
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        root, mount_point = fields[3], fields[4]
        fstype, _, super_options = line.split(" - ", 1)[1].split()[:3]
        wanted = v1_path if fstype == "cgroup" and controller in super_options.split(",") else (
            v2_path if fstype == "cgroup2" and v1_path is None else None)
        if wanted is None:
            continue
        relative = os.path.relpath(wanted, root) if wanted.startswith(root) else None
        if relative is None or relative.startswith(".."):
            continue  # our cgroup is not visible below this mount
        found = Path(mount_point) / relative if relative != "." else Path(mount_point)
        return CgroupTree(found, 1 if fstype == "cgroup" else 2, controller)
    return None


def find_tree(controller: Controller) -> tuple[CgroupTree | None, str | None]:
    """This runner's tree for container cgroups of ``controller``, or None and why not (it must be able to make them)."""
    try:
        tree = own_cgroup(Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text(), controller)
    except OSError as error:
        return None, f"cannot read this process's cgroups: {error}"
    if tree is None:
        return None, f"no {controller} cgroup controller is mounted for this process"
    if tree.version == 2:
        try:
            delegated = controller in (tree.path / "cgroup.subtree_control").read_text().split()
        except OSError:
            delegated = False
        if not delegated:
            return None, f"cgroup v2 at {tree.path} does not delegate the {controller} controller to its children"
    ours = CgroupTree(tree.path / "podium", tree.version, controller)
    probe = ours.path / f"probe-{os.getpid()}-{time.monotonic_ns()}"
    try:
        _make(ours)
        probe.mkdir()
        try:
            if not (probe / _LIMIT_FILE[controller, tree.version]).exists():
                return None, f"cgroups made below {tree.path} get no {controller} controller"
        finally:
            probe.rmdir()
    except OSError as error:
        return None, f"cannot create {controller} cgroups below {tree.path}: {error.strerror}"
    return ours, None


def _make(tree: CgroupTree) -> None:
    """Create the runner's directory of container cgroups; in v2, give its children the controller."""
    tree.path.mkdir(parents=True, exist_ok=True)
    if tree.version == 2:
        with contextlib.suppress(OSError):  # (enabled already, or refused: the probe tells)
            (tree.path / "cgroup.subtree_control").write_text(f"+{tree.controller}")


class ContainerCgroup:
    """One container's cgroup of one controller: join it from the child, remove it after."""

    def __init__(self, tree: CgroupTree, name: str) -> None:
        self.tree = tree
        self.path = tree.path / name
        self.path.mkdir(parents=True, exist_ok=True)

    def join(self) -> None:
        """Move the calling process into the cgroup (a ``preexec_fn``: the child joins before exec)."""
        self.adopt(os.getpid())

    def adopt(self, pid: int) -> None:
        """Move process ``pid`` into the cgroup (its children to come follow it, not those it has)."""
        with open(self.path / "cgroup.procs", "w") as procs:
            procs.write(str(pid))

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
                    log.warning("%s cgroup %s not removed: %s", self.tree.controller, self.path, error.strerror)
                    return
                time.sleep(0.02)


class ContainerMemory(ContainerCgroup):
    """One container's memory cgroup: create with its limit, join from the child, read OOM kills, remove."""

    def __init__(self, tree: CgroupTree, name: str, limit: int) -> None:
        super().__init__(tree, name)
        if tree.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(str(limit))
            with contextlib.suppress(OSError):  # no swapping past the limit either (when swap accounting is on)
                (self.path / "memory.memsw.limit_in_bytes").write_text(str(limit))
        else:
            (self.path / "memory.max").write_text(str(limit))
            with contextlib.suppress(OSError):
                (self.path / "memory.swap.max").write_text("0")

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


class ContainerPids(ContainerCgroup):
    """One container's pids cgroup: at most ``limit`` processes and threads in it at once."""

    def __init__(self, tree: CgroupTree, name: str, limit: int) -> None:
        super().__init__(tree, name)
        (self.path / "pids.max").write_text(str(limit))
