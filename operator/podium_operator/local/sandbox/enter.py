"""Enter a container's sandbox, then exec the container's command. Standard library only.

Run as ``python -I -S enter.py SPEC -- COMMAND...`` (by path, not as a module, so that
nothing from the pod's environment is imported while still root), or with ``--probe`` to print
what this machine allows (see :func:`.confiner.sandbox_support`).

A separate process rather than a ``preexec_fn``: ``unshare`` refuses a multi-threaded process,
and mounting from a forked copy of the runner would not be safe.

SPEC is JSON with these keys (see :mod:`.view` for what the root holds)::

    network            bool: a fresh network namespace (only a down loopback)
    isolate            bool: private mount, PID and IPC namespaces, and a new root built from
                       nothing: a fresh tmpfs holding only ``root``, entered with pivot_root,
                       the host's root then unmounted
    root               [[kind, path, ...], ...], parents first: ["tmpfs", path, mode, writable],
                       ["bind", source, target, writable, below or null], ["link", path, to],
                       ["file", path, text, mode], ["dir", path]
    userns             [uid, gid] or null: first a user namespace, the container's user and group
                       being these (the runner's) outside; for a runner that is not root
    read_only_root     bool: the new root (and what is not marked writable) is read-only
    user               [uid, gid, [groups...]] or null
    no_new_privileges  bool
    cwd                the working directory, entered as the container's user
    refuse             (optional) why the container must not start

With ``isolate`` the command runs as PID 1 of its own PID namespace with a fresh ``/proc``:
otherwise a pod could read another pod of the same user through ``/proc/<pid>/root`` or
``/proc/<pid>/environ``. As in a container, PID 1 gets only the signals it handles (and
SIGKILL). This process stays as its parent and exits as it does.

Mount points are reached from the new root without following links, and sources below a
``below`` directory (pods' volumes) too: a link planted in a shared claim redirects nothing.

Setup failures print ``podium sandbox: ...`` to stderr (the container log) and exit 128.
"""

import ctypes
import errno as errnos
import json
import os
import platform
import signal
import stat
import sys
from collections.abc import Callable
from typing import Any

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)  # fmt: skip
ISOLATE = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)  # fmt: skip
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
# Per-mount flags a read-only remount must keep (statvfs's ST_* share MS_*'s values).
KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096  # + noatime, nodiratime, relatime
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
STAGES = ("/tmp", "/mnt", "/var/tmp")  # where the new root is built (in the private mount namespace)
PATH_FD = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
SETUP_FAILED = 128
PROBE_USER = 65534

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    result = _libc.mount(raw(source), raw(target), raw(fstype), ctypes.c_ulong(flags), raw(data))
    _check(result, f"mount {target}")


def remount_read_only(target: str) -> None:
    kept = os.statvfs(target).f_flag & KEPT_FLAGS
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def user_namespace(inner: tuple[int, int], outer: tuple[int, int]) -> None:
    """Map ``inner`` (uid, gid) to ``outer`` in the user namespace this process just entered."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{inner[0]} {outer[0]} 1"),
                       ("gid_map", f"{inner[1]} {outer[1]} 1")):  # fmt: skip
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def walk(root: int, path: str, create: bool) -> int:
    """An ``O_PATH`` descriptor of directory ``path`` below ``root``, never through a link."""
    fd = os.dup(root)
    for part in [p for p in path.split("/") if p]:
        try:
            step = os.open(part, PATH_FD | os.O_DIRECTORY, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(part, 0o755, dir_fd=fd)
            step = os.open(part, PATH_FD | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = step
    return fd


def open_source(source: str, below: str | None) -> int:
    if below is None or not (source + "/").startswith(below.rstrip("/") + "/"):
        return os.open(source, os.O_PATH | os.O_CLOEXEC)
    base = os.open(below, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return walk(base, source[len(below.rstrip("/")) :], create=False)
    finally:
        os.close(base)


def mount_point(root: int, path: str, directory: bool) -> int:
    """Create (if need be) and open the directory or empty file ``path`` below ``root``."""
    if directory:
        return walk(root, path, create=True)
    parent_path, name = path.rsplit("/", 1)
    parent = walk(root, parent_path, create=True)
    try:
        if not os.path.lexists(f"{fd_path(parent)}/{name}"):
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644, dir_fd=parent))
        return os.open(name, PATH_FD, dir_fd=parent)
    finally:
        os.close(parent)


def reopen(root: int, path: str) -> int:
    """An ``O_PATH`` descriptor of what is mounted at ``path`` below ``root`` (a directory or a file)."""
    parent_path, name = path.rstrip("/").rsplit("/", 1)
    parent = walk(root, parent_path, create=False)
    try:
        return os.open(name, PATH_FD, dir_fd=parent)
    finally:
        os.close(parent)


def build_root(entries: list[list[Any]], read_only: bool) -> str:
    """Build the new root in a private mount namespace; the path where it was built."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here may reach the host
    # Open the sources first: the file systems mounted below may hide them.
    sources = {i: open_source(e[1], e[4]) for i, e in enumerate(entries) if e[0] == "bind"}
    stage = next((s for s in STAGES if os.path.isdir(s) and not os.path.islink(s)), None)
    if stage is None:
        raise OSError(errnos.ENOENT, f"no directory to build the root in (one of {', '.join(STAGES)})")
    mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    root = os.open(stage, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    umask = os.umask(0o022)
    read_only_mounts = []
    try:
        for i, (kind, path, *rest) in enumerate(entries):
            if kind == "bind":
                target, writable = rest[0], rest[1]
                is_dir = stat.S_ISDIR(os.fstat(sources[i]).st_mode)
                point = mount_point(root, target, is_dir)
                mount(fd_path(sources[i]), fd_path(point), None, MS_BIND | MS_REC)
                os.close(sources.pop(i))
            elif kind == "tmpfs":
                point = walk(root, path, create=True)
                mount("tmpfs", fd_path(point), "tmpfs", MS_NOSUID | MS_NODEV, f"mode={rest[0]:o}")
                writable = rest[1]
            else:
                parent_path, name = path.rstrip("/").rsplit("/", 1) if path.strip("/") else ("/", "")
                parent = walk(root, parent_path, create=True)
                if kind == "link":
                    os.symlink(rest[0], name, dir_fd=parent)
                elif kind == "file":
                    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, rest[1], dir_fd=parent)
                    with os.fdopen(fd, "w") as f:
                        f.write(rest[0])
                elif kind == "dir" and name:
                    os.close(walk(parent, name, create=True))
                os.close(parent)
                continue
            os.close(point)
            if not writable:  # (made read-only at the end, once the mount points below it exist)
                read_only_mounts.append(reopen(root, target if kind == "bind" else path))
        for fd in read_only_mounts:
            remount_read_only(fd_path(fd))
            os.close(fd)
        if read_only:
            remount_read_only(stage)
    finally:
        os.umask(umask)
        os.close(root)
    return stage


def enter_root(stage: str) -> None:
    """In the new PID namespace: a fresh /proc, then the new root; the host's root is unmounted."""
    # (Mounted while the host's /proc is still visible: a user namespace may not mount a hidden one.)
    mount("proc", stage + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(errnos.ENOSYS, f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(stage)
    _check(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "umount the host's root")
    os.chdir("/")


def drop_bounding_set() -> None:
    """No capability can come back, not even through exec (a warm interpreter does not exec at all)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            if errno == errnos.EINVAL:
                break  # past the last capability this kernel knows
            raise OSError(errno, f"prctl(PR_CAPBSET_DROP): {os.strerror(errno)}")
    _libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL


def enter(spec: dict[str, Any]) -> None:
    """Set up the sandbox; with ``isolate``, return in the child that is PID 1 of its namespace."""
    if spec.get("refuse"):
        raise OSError(errnos.EPERM, f"not started: {spec['refuse']}")
    flags = (CLONE_NEWNET if spec["network"] else 0) | (ISOLATE if spec["isolate"] else 0)
    userns = spec.get("userns") if flags else None
    user = spec["user"]
    if flags:
        unshare(flags | (CLONE_NEWUSER if userns else 0))
    if userns:
        user_namespace((user[0], user[1]) if user else (userns[0], userns[1]), (userns[0], userns[1]))
    if spec["isolate"]:
        stage = build_root(spec["root"], spec["read_only_root"])
        _fork_init()
        enter_root(stage)
    unprivileged = bool(userns) or (user is not None and user[0] != 0)
    if unprivileged:
        drop_bounding_set()
    if user is not None:
        uid, gid, groups = user
        if not userns:  # (a user namespace made without privileges may not set groups)
            os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)  # from root to another user: the capabilities are gone too
    if unprivileged:  # (not in a user namespace: there the user stays the one that set it up)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        _check(_libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    if spec["no_new_privileges"]:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    os.chdir(spec["cwd"])


def _fork_init() -> None:
    """Fork the namespace's PID 1 (which returns); stay as its parent and exit as it does."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # the child decides, as PID 1
        signal.signal(sig, lambda *_: None)
    pid = os.fork()
    if pid == 0:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        return
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        killer = os.WTERMSIG(status)
        if killer not in (signal.SIGKILL, signal.SIGSTOP):  # (those have no handler to reset)
            signal.signal(killer, signal.SIG_DFL)
        os.kill(os.getpid(), killer)
        os._exit(128 + killer)
    os._exit(os.WEXITSTATUS(status))


def probe() -> dict[str, str | None]:
    """Try each restriction in a throw-away child: ``{check: None or why it fails}``, and the mode."""
    ids = (os.geteuid(), os.getegid())

    def own_user_namespace() -> None:
        unshare(CLONE_NEWUSER)
        user_namespace((PROBE_USER, PROBE_USER), ids)

    results: dict[str, str | None] = {"userns": _in_child(own_user_namespace)}
    if ids[0] == 0:
        mode, results["user"] = "root", _in_child(_switch_user)
    elif results["userns"] is None:
        mode, results["user"] = "userns", None
    else:
        mode = "none"
        results["user"] = f"the runner is not root (uid {ids[0]}) and cannot create user namespaces: {results['userns']}"
    userns = list(ids) if mode == "userns" else None
    results["network"] = _in_child(lambda: _sandbox(userns, network=True))
    results["mounts"] = _in_child(lambda: _sandbox(userns, entries=[["tmpfs", "/tmp", 0o1777, True]]))
    view: list[list[Any]] = [
        *(["bind", p, p, False, None] for p in ("/usr", "/lib", "/lib64") if os.path.isdir(p)),
        ["bind", "/dev/null", "/dev/null", True, None], ["tmpfs", "/tmp", 0o1777, True],
    ]  # fmt: skip
    results["root_fs"] = _in_child(lambda: _sandbox(userns, entries=view))
    results["readonly_root"] = _in_child(lambda: _sandbox(userns, entries=view, read_only=True))
    if results["mounts"] is None and results["root_fs"] is not None:
        results["mounts"] = f"no root file system of its own: {results['root_fs']}"
    return {**results, "mode": mode}


def _switch_user() -> None:
    os.setgroups([])
    os.setgid(PROBE_USER)
    os.setuid(PROBE_USER)


def _sandbox(
    userns: list[int] | None, *, network: bool = False, entries: list[list[Any]] | None = None, read_only: bool = False
) -> None:
    """Enter a sandbox as a container would (the user of the probe), and check what it sees."""
    root = [["dir", "/proc"], *(entries or [])]
    enter({"network": network, "isolate": entries is not None, "root": root, "userns": userns,
           "read_only_root": read_only, "user": [PROBE_USER, PROBE_USER, []] if userns or os.geteuid() == 0 else None,
           "no_new_privileges": True, "cwd": "/"})  # fmt: skip
    if entries is not None and (os.listdir("/proc/self") == [] or os.path.exists("/etc/hostname")):
        raise OSError(errnos.EIO, "the new root shows what it should not")
    if read_only and not os.statvfs("/").f_flag & MS_RDONLY:
        raise OSError(errnos.EIO, "the new root stays writable")


def _in_child(attempt: Callable[[], object]) -> str | None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            attempt()
            code = 0
        except Exception as e:  # report any failure as the reason
            os.write(write, str(e).encode())
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        reason = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return None if os.waitstatus_to_exitcode(status) == 0 else reason or "failed"


def main(argv: list[str]) -> int:
    if argv == ["--probe"]:
        print(json.dumps(probe()))
        return 0
    if len(argv) < 3 or argv[1] != "--":
        print("usage: enter.py SPEC -- COMMAND... | --probe", file=sys.stderr)
        return 2
    spec, command = json.loads(argv[0]), argv[2:]
    try:
        enter(spec)
    except OSError as e:
        print(f"podium sandbox: {e}", file=sys.stderr, flush=True)
        return SETUP_FAILED
    try:
        os.execvpe(command[0], command, os.environ)
    except OSError as e:
        print(f"podium sandbox: cannot run {command[0]!r}: {e.strerror}", file=sys.stderr, flush=True)
        return SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
