"""Create a pod's directories with owners and modes that let its users in and keep others out.

Layout and modes (``G`` is the pod's group, see :func:`podium_operator.local.podspec.security.pod_group`; owners are
only changed when the runner may switch users, i.e. runs as root)::

    <workdir>/                       0711 runner   not listable
      <ns>/                          0711 runner
        <pod>/                       0710 root:G   (0700 without G): logs stay the runner's
          <container>.log            0600 runner
          tmp/ volumes/<v>/ termination/ work/<c>/   2770 root:G
        pvc/<claim>/                 0711 runner
          <claim uid>/               0770 runner when created; fsGroup then applies

``fsGroup`` is applied to every volume as the kubelet does (recursive group ownership,
``g+rw``, ``g+x`` and setgid on directories; ``g+r`` only on read-only volumes), so that a
claim written by a root pod is writable by the next pod's users.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from podium_operator.local.podspec.plan import PodPlan
from podium_operator.local.podspec.security import pod_group

PRIVATE_DIR = 0o2770
PASSAGE = 0o711  # traversable, not listable
NEW_CLAIM = 0o770


def prepare_pod(plan: PodPlan, workdir: Path, *, chown: bool) -> None:
    """Create the pod's directories and volume files; apply ``fsGroup`` (when ``chown``)."""
    group = pod_group(plan.fs_group, (c.security for c in plan.all_containers)) or 0
    owner = (0, group) if chown else None
    ns_dir = plan.pod_dir.parent
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, PASSAGE)
    _make_dirs(workdir, ns_dir, PASSAGE, None, reset=True)
    _make_dirs(ns_dir, plan.pod_dir, 0o710 if group else 0o700, owner, reset=True)
    claims = [v.path for v in plan.volumes.values() if not v.path.is_relative_to(plan.pod_dir)]
    for claim in claims:
        _make_dirs(ns_dir, claim.parent, PASSAGE, None, reset=True)
        _make_dirs(claim.parent, claim, NEW_CLAIM, None, reset=False)
    for directory in plan.directories:
        if directory.is_relative_to(plan.pod_dir):
            _make_dirs(plan.pod_dir, directory, PRIVATE_DIR, owner, reset=True)
        else:  # a subPath in a claim
            base = next(c for c in claims if directory.is_relative_to(c))
            _make_dirs(base, directory, NEW_CLAIM, None, reset=False)
    for volume in plan.volumes.values():
        for relative, content in volume.files.items():
            target = volume.path / relative
            _make_dirs(volume.path, target.parent, PRIVATE_DIR, owner, reset=False)
            target.write_bytes(content)
    if chown and plan.fs_group is not None:
        for volume in plan.volumes.values():
            apply_fs_group(volume.path, plan.fs_group, read_only=volume.read_only, max_files=volume.max_files)


class TooManyFiles(OSError):
    """A volume holds more entries than its size allows (where no file system of that size caps them)."""


def apply_fs_group(root: Path, gid: int, *, read_only: bool = False, max_files: int | None = None) -> None:
    """The kubelet's ``fsGroup`` ownership change, safe against symbolic links planted by pods.

    Directories are walked through descriptors (``os.fwalk``) and files opened with
    ``O_NOFOLLOW``, so that a link swapped in by a running pod cannot redirect a change.
    Linear in the volume's entries: run it off the event loop; past ``max_files`` entries it
    stops with :class:`TooManyFiles` (a sized volume's file system holds no more anyway).
    """
    mask = 0o440 if read_only else 0o660
    seen = 0
    for _, _, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        seen += 1 + len(files)  # this directory (each counts when it is walked) and its other entries
        if max_files is not None and seen > max_files:
            raise TooManyFiles(f"{root} holds more than {max_files} files, the most a volume of its size holds")
        _own(dir_fd, gid, mask | 0o110 | stat.S_ISGID)
        for name in files:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
            except OSError:  # a link, or gone
                continue
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    _own(fd, gid, mask)
            finally:
                os.close(fd)


def _own(fd: int, gid: int, mask: int) -> None:
    os.fchown(fd, -1, gid)  # (clears setuid/setgid bits of files, as chown does)
    os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | mask)


def _make_dirs(base: Path, target: Path, mode: int, owner: tuple[int, int] | None, *, reset: bool) -> None:
    """Create ``target`` below the existing ``base``; set the mode (and owner) of those created,
    or of all of them with ``reset``. A symbolic link on the way (planted in a claim by an
    earlier pod, say) is refused rather than followed."""
    current = base
    for part in target.relative_to(base).parts:
        current = current / part
        try:
            current.mkdir()
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise PermissionError(f"{current} is not a directory") from None
            if not reset:
                continue
        os.chmod(current, mode)
        if owner is not None:
            os.chown(current, *owner)
