"""Volume sizes as a cluster's storage enforces them: a file system of the volume's size, per volume.

A claim (``resources.requests.storage``) and an emptyDir with a ``sizeLimit`` each get a file
system of that size mounted at their directory (see :attr:`~podium_operator.local.podspec.plan.VolumePlan.size_limit`),
so that writing past it fails with ``ENOSPC`` inside the pod and the host's disk keeps the rest;
it holds :attr:`~podium_operator.local.podspec.plan.VolumePlan.max_files` files, so that millions
of empty files cannot be made there either. Backends, the first this machine allows (the runner
must be root, and may mount):

``ext4``   a sparse image file, loop-mounted: on disk as a PersistentVolume is, never more of it
           than was written; images live in ``<workdir>/.images/`` (the runner's alone) and
           outlive the runner: the next one mounts them again
``tmpfs``  in memory: what a pod writes there takes the host's memory (charged to the writer's
           memory cgroup); a claim's content lasts as long as the runner

With ``auto``, a sized emptyDir (scratch space, such as every evaluation step's ``/tmp``) gets a
tmpfs wherever one can be mounted — no image to format, no loop device held per pod — and a
claim the first backend of the list.

Otherwise sizes are not enforced (:attr:`VolumeFilesystems.unsupported` says why), and only the
ownership walk of ``fsGroup`` refuses a volume with more files than its size allows.

A pod's file systems stay mounted until its directory is removed, when its Job is deleted (its
logs and emptyDirs stay readable after it ends, as before); a claim's until the claim is deleted
(after the last pod using it ends, as ``kubernetes.io/pvc-protection`` holds a claim in use);
all of them are unmounted when the runner stops. Everything here blocks: call it in a thread.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from podium_operator.local.podspec.plan import PodPlan

log = logging.getLogger(__name__)

BACKENDS = ("ext4", "tmpfs")
IMAGES = ".images"  # below the workdir; namespace names cannot start with a dot
MIN_EXT4_BYTES = 1 << 20
# Inodes 1-10 are the file system's own, the root directory (2) among them: with ``files + 9`` inodes,
# the root and ``files - 1`` entries fit, as in a tmpfs of ``nr_inodes=files`` and as the fsGroup walk counts.
_EXT4_OWN_INODES = 9
_MOUNT_OPTIONS = "nosuid,nodev"
# The image is sparse, so its inode tables read as zeros already: nothing writes zeros there later.
_EXT4_OPTIONS = f"loop,{_MOUNT_OPTIONS},noinit_itable"


class VolumeFilesystems:
    """Mounts sized volumes for pods and removes pods' and claims' directories (thread-safe)."""

    def __init__(self, workdir: Path, backend: str = "auto") -> None:
        self.workdir = workdir
        self.backend: str | None = None
        self._auto = backend == "auto"
        self.unsupported: str | None = None
        if backend == "off":
            self.unsupported = "volume size limits turned off"
        elif backend not in ("auto", *BACKENDS):
            raise ValueError(f"unknown volume backend {backend!r} (auto, ext4, tmpfs or off)")
        else:
            reasons = []
            for candidate in BACKENDS if backend == "auto" else (backend,):
                failure = _probe(candidate)
                if failure is None:
                    self.backend = candidate
                    break
                reasons.append(f"{candidate}: {failure}")
            else:
                self.unsupported = "no size-limited file system can be mounted here (" + "; ".join(reasons) + ")"
        self._lock = threading.Lock()
        self._users: collections.Counter[Path] = collections.Counter()  # claims, by pods using them
        self._doomed: set[Path] = set()  # deleted claims still in use
        self._prepared: dict[Path, float] = {}  # claims, when a pod last prepared them (time.time())

    @property
    def mechanism(self) -> str:
        if self.backend == "ext4" and self._scratch_backend() == "tmpfs":
            return "ext4 (a sparse image file on a loop device) per sized claim, tmpfs per sized emptyDir"
        if self.backend == "ext4":
            return "ext4 (a sparse image file on a loop device per sized volume)"
        if self.backend == "tmpfs":
            return "tmpfs (in memory, per sized volume)"
        return f"none: {self.unsupported}"

    # --- Pods ----------------------------------------------------------------------------------

    def mount(self, plan: PodPlan) -> None:
        """Mount a file system of its size at each sized volume of ``plan`` (claims: unless mounted)."""
        claims = [v.path for v in plan.volumes.values() if not v.path.is_relative_to(plan.pod_dir)]
        with self._lock:
            for path in claims:
                self._users[path] += 1
                self._prepared[path] = time.time()
        if self.backend is None:
            return
        for volume in plan.volumes.values():
            if volume.size_limit is not None:
                assert volume.max_files is not None
                scratch = volume.path.is_relative_to(plan.pod_dir)  # an emptyDir, not a claim
                with self._lock:
                    self._mount(volume.path, volume.size_limit, volume.max_files,
                                self._scratch_backend() if scratch else self.backend)

    def release(self, plan: PodPlan) -> None:
        """The pod is over: a deleted claim it was the last to use goes now."""
        for path in {v.path for v in plan.volumes.values() if not v.path.is_relative_to(plan.pod_dir)}:
            with self._lock:
                self._users[path] -= 1
                if self._users[path] > 0:
                    continue
                del self._users[path]
                if path in self._doomed:
                    self._doomed.discard(path)
                    self._remove_claim(path)

    def remove_pod(self, pod_dir: Path) -> None:
        """Delete a pod's directory, its file systems and their images."""
        with self._lock:
            _unmount_below(pod_dir)
            shutil.rmtree(pod_dir, ignore_errors=True)
            shutil.rmtree(self._images(pod_dir), ignore_errors=True)

    # --- Claims --------------------------------------------------------------------------------

    def remove_claim(self, path: Path, *, unless_prepared_since: float | None = None) -> None:
        """Delete a deleted claim's directory (once no pod uses it any more), file system and image.

        ``unless_prepared_since``: keep it if a pod prepared it since then (a claim created after
        the LIST that found it missing).
        """
        with self._lock:
            if unless_prepared_since is not None and self._prepared.get(path, 0.0) >= unless_prepared_since:
                return
            if self._users[path] > 0:
                self._doomed.add(path)
                return
            self._users.pop(path, None)
            self._remove_claim(path)

    def _remove_claim(self, path: Path) -> None:
        _unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)
        self._image(path).unlink(missing_ok=True)
        self._prepared.pop(path, None)
        for directory in (path.parent, self._image(path).parent):  # the claim's, once it has no volume left
            with contextlib.suppress(OSError):
                directory.rmdir()

    def unmount_all(self) -> None:
        """Unmount every file system below the workdir (images stay: the next runner mounts them)."""
        with self._lock:
            _unmount_below(self.workdir)

    # --- Mounting ------------------------------------------------------------------------------

    def _images(self, path: Path) -> Path:
        """Where the images of the volumes at or below ``path`` are."""
        return self.workdir / IMAGES / path.relative_to(self.workdir)

    def _image(self, volume: Path) -> Path:
        return self._images(volume).with_name(volume.name + ".img")

    def _scratch_backend(self) -> str | None:
        """emptyDirs are scratch space that goes with the pod: a tmpfs (no image to format, no loop
        device held per pod) wherever one can be mounted, unless a backend was asked for."""
        if self._auto and self.backend is not None and _probe("tmpfs") is None:
            return "tmpfs"
        return self.backend

    def _mount(self, target: Path, size: int, files: int, backend: str | None) -> None:
        if os.path.ismount(target):
            return  # (mounted for an earlier pod, or by a runner before this one)
        target.mkdir(parents=True, exist_ok=True)
        if backend == "tmpfs":
            _run("mount", "-t", "tmpfs", "-o", f"{_MOUNT_OPTIONS},size={size},nr_inodes={files},mode=0770",
                 "tmpfs", str(target))  # fmt: skip
            return
        image = self._image(target)
        if image.exists():
            _run("mount", "-t", "ext4", "-o", _EXT4_OPTIONS, str(image), str(target))
            return
        image.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir / IMAGES, 0o700)
        try:
            _format(image, target, size, files)
        except OSError:
            with contextlib.suppress(OSError):
                _unmount(str(target))
            image.unlink(missing_ok=True)
            raise


def _format(image: Path, target: Path, size: int, files: int) -> None:
    """Make a new ext4 image of ``size`` with room for ``files`` entries, and mount it at ``target``.

    ``mkfs.ext4`` rounds the inode count up to whole inode tables: format again with fewer when
    that allows more than ``files`` entries. The count is read from the unmounted image, so an image
    is mounted once, when it is final (formatting one a loop device may still hold corrupts it).
    """
    inodes = files + _EXT4_OWN_INODES
    for _ in range(4):
        with open(image, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as f:
            f.truncate(max(size, MIN_EXT4_BYTES))  # sparse
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-N", str(inodes),
             "-E", f"nodiscard,lazy_itable_init=1,root_owner={os.geteuid()}:{os.getegid()}", str(image))  # fmt: skip
        excess = _inode_count(image) - _EXT4_OWN_INODES - files
        if excess <= 0:
            break
        inodes -= excess
    _run("mount", "-t", "ext4", "-o", _EXT4_OPTIONS, str(image), str(target))
    with contextlib.suppress(OSError):
        (target / "lost+found").rmdir()  # (not part of the volume, as a pod sees it)
    os.chmod(target, 0o770)


def _inode_count(image: Path) -> int:
    try:
        listing = subprocess.run(["tune2fs", "-l", str(image)], check=True, capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise OSError(f"tune2fs failed: {e}") from None
    found = re.search(r"^Inode count:\s+(\d+)", listing, flags=re.M)
    if found is None:
        raise OSError(f"tune2fs printed no inode count for {image}")
    return int(found.group(1))


def _run(*command: str) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
    except subprocess.CalledProcessError as e:
        raise OSError(f"{command[0]} failed: {(e.stderr or e.stdout).strip() or e.returncode}") from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OSError(f"{command[0]} failed: {e}") from None


def _unmount(point: str) -> None:
    try:
        _run("umount", point)
    except OSError:  # still in use (a process that has not let go): detach it now, free it after
        _run("umount", "-l", point)


def mount_points() -> list[str]:
    """This mount namespace's mount points, in mount order (octal escapes decoded)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split(" ")[4] for line in f]
    return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), p) for p in points]


def _unmount_below(root: Path) -> None:
    prefix = os.path.realpath(root)  # as the kernel lists it
    below = [p for p in mount_points() if p == prefix or p.startswith(prefix.rstrip("/") + "/")]
    for point in reversed(below):  # the last mounted first: mounts on top of others, inner ones
        try:
            _unmount(point)
        except OSError as e:
            log.warning("%s not unmounted: %s", point, e)


@functools.cache
def _probe(backend: str) -> str | None:
    """None when a sized file system of ``backend`` can be mounted here, else why not (once per process)."""
    if os.geteuid() != 0:
        return f"the runner is not root (uid {os.geteuid()}): it cannot mount"
    missing = [tool for tool in ("mount", "umount", *(["mkfs.ext4", "tune2fs"] if backend == "ext4" else []))
               if shutil.which(tool) is None]  # fmt: skip
    if missing:
        return f"{', '.join(missing)} not found"
    with tempfile.TemporaryDirectory(prefix="podium-volume-probe-") as scratch:
        target = Path(scratch) / "volume"
        target.mkdir()
        try:
            if backend == "tmpfs":
                _run("mount", "-t", "tmpfs", "-o", f"{_MOUNT_OPTIONS},size=1m,nr_inodes=64", "tmpfs", str(target))
            else:
                _format(Path(scratch) / "volume.img", target, MIN_EXT4_BYTES, 64)
            _unmount(str(target))
        except OSError as e:
            with contextlib.suppress(OSError):
                _unmount(str(target))
            return str(e)
    return None
