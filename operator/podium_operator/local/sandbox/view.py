"""Plan a confined container's root file system, built from nothing (pure but for the injected ``lstat``).

The container does not see the host minus some hidden paths: it sees a fresh, empty file
system holding only what a container image would, at the host's paths (so that path mapping
keeps working, see :mod:`podium_operator.local.podspec.plan`):

- read-only, the image (:func:`host_image`): the base OS (``/usr``, and ``/bin``, ``/sbin``,
  ``/lib*`` as the links or directories they are on the host), the job interpreter's prefixes
  and library directories, and Podium's own package directories (not the checkout around them);
- a generated ``/etc``: ``passwd`` and ``group`` naming root and the pod's user only, ``hosts``
  and ``nsswitch.conf``, plus the host's ``ld.so.cache``, ``localtime`` and certificates;
- a minimal ``/dev`` (``null``, ``zero``, ``full``, ``random``, ``urandom``, ``tty``, the
  ``fd`` and ``std*`` links, a fresh ``/dev/shm``), a private ``/tmp`` and a mount point for
  the fresh ``/proc`` that :mod:`.enter` mounts in the container's PID namespace;
- the container's volume mounts (read-only when mounted so), the pod's ``tmp/`` and
  ``termination/`` directories and its default working directory.

Nothing else: not the runner's workdir (other pods; hidden under an empty file system should
the image contain it), not the checkout, not ``/var`` or ``/run`` (host sockets), not ``/sys``.
Under ``readOnlyRootFilesystem`` the root is read-only, and so is ``/tmp`` unless the container
mounts a volume there (the volume itself is reached through path mapping; the tmpfs stands in
for it for paths built at run time, but is private to the container).
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from podium_operator.local.podspec.plan import ContainerPlan

Stat = Callable[[Path], os.stat_result]
BASE_OS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
HOST_ETC = ("ld.so.cache", "localtime", "ssl", "pki", "ca-certificates")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}  # fmt: skip
# Never part of an image, whatever the interpreter's prefixes say.
NEVER = tuple(map(Path, ("/", "/tmp", "/etc", "/var", "/run", "/home", "/root", "/mnt", "/opt", "/srv")))
KERNEL = tuple(map(Path, ("/proc", "/sys", "/dev", "/run", "/var/run")))
NOBODY = 65534


@dataclass(frozen=True)
class Tmpfs:
    path: Path
    mode: int
    writable: bool  # stays writable under a read-only root


@dataclass(frozen=True)
class Bind:
    source: Path  # a directory or a file
    target: Path
    writable: bool
    below: Path | None = None  # the source is reached from here without following links


@dataclass(frozen=True)
class Link:
    path: Path
    to: str


@dataclass(frozen=True)
class File:
    path: Path
    text: str
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    path: Path


Entry = Tmpfs | Bind | Link | File | Dir


@dataclass(frozen=True)
class View:
    entries: tuple[Entry, ...]  # parents before children
    read_only_root: bool

    @property
    def binds(self) -> tuple[Bind, ...]:
        return tuple(e for e in self.entries if isinstance(e, Bind))


@dataclass(frozen=True)
class Image:
    """What of the host a container image would contain: read-only binds and links."""

    entries: tuple[Bind | Link, ...]


def host_image(runtime: Iterable[Path], lstat: Stat = os.lstat, readlink: Callable[[Path], str] = os.readlink) -> Image:
    """The image: the base OS, the ``runtime`` directories (interpreter, packages), ``/etc`` and ``/dev`` files."""
    entries: list[Bind | Link] = []
    for name in BASE_OS:
        path = Path("/", name)
        info = _lstat(path, lstat)
        if info is not None and st.S_ISLNK(info.st_mode):
            entries.append(Link(path, readlink(path)))
        elif info is not None and st.S_ISDIR(info.st_mode):
            entries.append(Bind(path, path, False))
    dirs = []
    for path in dict.fromkeys(runtime):
        info = _lstat(path, lstat) if path.is_absolute() else None
        if info is None or not st.S_ISDIR(info.st_mode) or path in NEVER or _under(path, KERNEL):
            continue
        if path.parts[1] in BASE_OS:
            continue  # visible through the base OS already
        dirs.append(path)
    entries += [Bind(p, p, False) for p in _outermost(dirs)]
    for name, base in [*((n, "/etc") for n in HOST_ETC), *((n, "/dev") for n in DEVICES)]:
        path = Path(base, name)
        if _lstat(path, lstat) is not None:
            entries.append(Bind(path, path, base == "/dev"))  # (device nodes are not written through the mount)
    return Image(tuple(entries))


def plan_view(
    c: ContainerPlan,
    *,
    pod_dir: Path,
    workdir: Path,
    image: Image,
    user: tuple[int, int, Collection[int]],
    hostname: str = "localhost",
) -> View:
    """The root of container ``c`` of the pod in ``pod_dir``, running as ``user`` (uid, gid, groups)."""
    read_only = c.security.read_only_root
    tmp_writable = not read_only or any(Path(m.path) == Path("/tmp") for m in c.mounts)
    image_entries = [e for e in image.entries if not _path(e).is_relative_to(workdir)]  # (pods are no image)
    entries: list[Entry] = [
        *image_entries,
        Tmpfs(Path("/tmp"), 0o1777, tmp_writable),
        Tmpfs(Path("/dev"), 0o755, False),
        Tmpfs(Path("/dev/shm"), 0o1777, True),
        *(Link(Path("/dev", name), to) for name, to in DEV_LINKS.items()),
        Dir(Path("/proc")),
        *_etc(user, c.env, hostname),
    ]
    image_dirs = [e.target for e in image_entries if isinstance(e, Bind)]
    if any(workdir.is_relative_to(d) for d in image_dirs):
        entries.append(Tmpfs(workdir, 0o755, False))  # other pods' directories stay out of sight
    own = [(m.source, not m.read_only) for m in c.mounts]
    own += [(p, True) for p in (pod_dir / "tmp", c.termination_log.parent)]
    if c.cwd.is_relative_to(pod_dir) and not any(c.cwd.is_relative_to(m.source) for m in c.mounts):
        own.append((c.cwd, True))
    for path, writable in own:
        entries.append(Bind(path, path, writable, workdir if path.is_relative_to(workdir) else None))
    bound = [_path(e) for e in entries if isinstance(e, (Bind, Tmpfs))]
    if not any(c.cwd.is_relative_to(b) for b in bound):
        entries.append(Dir(c.cwd))  # a working directory elsewhere starts empty, as a new one would
    unique = {_path(e): e for e in entries}  # the pod's own win
    return View(tuple(sorted(unique.values(), key=lambda e: len(_path(e).parts))), read_only)


def _etc(user: tuple[int, int, Collection[int]], env: Mapping[str, str], hostname: str) -> list[File]:
    uid, gid, groups = user
    home = env.get("HOME", "/")
    users = ["root:x:0:0:root:/root:/usr/sbin/nologin"]
    if uid != 0:
        name = "nobody" if uid == NOBODY else "podium"
        users.append(f"{name}:x:{uid}:{gid}:{name}:{home}:/usr/sbin/nologin")

    def group(g: int) -> str:
        return "root" if g == 0 else "nogroup" if g == NOBODY else "podium" if g == gid else f"podium{g}"

    group_lines = [f"{group(g)}:x:{g}:" for g in sorted({0, gid, *groups})]
    return [
        File(Path("/etc/passwd"), "\n".join(users) + "\n"),
        File(Path("/etc/group"), "\n".join(group_lines) + "\n"),
        File(Path("/etc/hosts"), f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n"),
        File(Path("/etc/nsswitch.conf"), "passwd: files\ngroup: files\nhosts: files dns\n"),
    ]


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


def _path(e: Entry) -> Path:
    return e.target if isinstance(e, Bind) else e.path


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """Drop directories inside others: they are visible already."""
    kept: list[Path] = []
    for p in sorted(paths, key=lambda p: len(p.parts)):
        if not any(p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(r) for r in roots)


def _lstat(path: Path, lstat: Stat) -> os.stat_result | None:
    try:
        return lstat(path)
    except OSError:
        return None
