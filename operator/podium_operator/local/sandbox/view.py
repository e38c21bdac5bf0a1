"""Plan what a confined container sees of the file system (pure but for the injected ``stat``).

The view is the host's file system, in a private mount namespace, minus what other pods or
the runner own:

- the runner's workdir (every pod's directories and logs, every claim), ``/tmp`` and
  ``/dev/shm`` are each hidden under a fresh, empty tmpfs;
- a directory the container's user cannot traverse on the way to something it needs (say
  ``/root``, when the Python runtime lives under it) is hidden the same way, as a real
  image would not contain it;

and then, put back at their own host paths (so that path mapping keeps working):

- the container's volume mounts (read-only when mounted so), the pod's ``tmp/`` and
  ``termination/`` directories and its default working directory;
- read-only, the runtime directories (Python prefixes, ``PATH`` and ``PYTHONPATH``
  entries) that the tmpfs mounts hid.

``/tmp`` stays writable under ``readOnlyRootFilesystem`` only when the container mounts a
volume there (the volume itself is reached through path mapping; the tmpfs stands in for it
for paths built at run time, but is private to the container).
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from podium_operator.local.podspec.plan import ContainerPlan

Stat = Callable[[Path], os.stat_result]
SCRATCH = (Path("/tmp"), Path("/dev/shm"))


@dataclass(frozen=True)
class Tmpfs:
    path: Path
    mode: int
    writable: bool  # stays writable under a read-only root


@dataclass(frozen=True)
class Bind:
    source: Path
    target: Path
    writable: bool


@dataclass(frozen=True)
class View:
    tmpfs: tuple[Tmpfs, ...]
    binds: tuple[Bind, ...]  # parents before children
    read_only_root: bool


def plan_view(
    c: ContainerPlan,
    *,
    pod_dir: Path,
    workdir: Path,
    runtime: Sequence[Path],
    uid: int,
    gids: Collection[int],
    stat: Stat = os.stat,
) -> View:
    """The view of container ``c`` of the pod in ``pod_dir``, running as ``uid`` with ``gids``."""
    read_only = c.security.read_only_root
    tmp_writable = not read_only or any(Path(m.path) == Path("/tmp") for m in c.mounts)
    hidden = [
        Tmpfs(workdir, 0o755, False),
        Tmpfs(SCRATCH[0], 0o1777, tmp_writable),
        Tmpfs(SCRATCH[1], 0o1777, True),
    ]
    runtime = [p for p in dict.fromkeys(runtime) if p.is_absolute() and _exists(p, stat)]
    for path in (workdir, *runtime):
        blocked = blocked_ancestor(path, uid, gids, stat)
        if blocked is not None:
            hidden.append(Tmpfs(blocked, 0o755, False))
    tmpfs = _outermost(hidden)

    binds = [Bind(m.source, m.source, not m.read_only) for m in c.mounts]
    binds += [Bind(p, p, True) for p in (pod_dir / "tmp", c.termination_log.parent)]
    if c.cwd.is_relative_to(pod_dir) and not any(c.cwd.is_relative_to(m.source) for m in c.mounts):
        binds.append(Bind(c.cwd, c.cwd, True))
    covered = [t.path for t in tmpfs]
    exposed: list[Path] = []
    for path in runtime:
        if (
            _related(path, workdir)
            or any(_within(s, path) for s in SCRATCH)
            or any(_within(path, e) for e in exposed)
        ):
            continue  # would expose what is hidden, or is exposed already
        if any(_within(path, t) for t in covered):
            exposed.append(path)
    binds += [Bind(p, p, False) for p in exposed]
    unique = {b.target: b for b in binds}
    return View(tmpfs, tuple(sorted(unique.values(), key=lambda b: len(b.target.parts))), read_only)


def blocked_ancestor(path: Path, uid: int, gids: Collection[int], stat: Stat = os.stat) -> Path | None:
    """The first directory above ``path`` that ``uid`` (with ``gids``) may not traverse, if any."""
    if uid == 0:
        return None
    for ancestor in reversed(path.parents[:-1]):  # from the top, "/" excepted
        try:
            info = stat(ancestor)
        except OSError:
            return None
        if not _may_traverse(info, uid, gids):
            return ancestor
    return None


def _may_traverse(info: os.stat_result, uid: int, gids: Collection[int]) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & st.S_IXUSR)
    if info.st_gid in gids:
        return bool(info.st_mode & st.S_IXGRP)
    return bool(info.st_mode & st.S_IXOTH)


def _outermost(tmpfs: Sequence[Tmpfs]) -> tuple[Tmpfs, ...]:
    """Drop file systems inside others: what they would hide is hidden already."""
    kept: list[Tmpfs] = []
    for t in sorted(tmpfs, key=lambda t: len(t.path.parts)):
        if not any(_within(t.path, k.path) for k in kept):
            kept.append(t)
    return tuple(kept)


def _within(path: Path, root: Path) -> bool:
    return path.is_relative_to(root)


def _related(a: Path, b: Path) -> bool:
    return _within(a, b) or _within(b, a)


def _exists(path: Path, stat: Stat) -> bool:
    try:
        stat(path)
    except OSError:
        return False
    return True
