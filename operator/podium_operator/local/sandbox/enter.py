"""Enter a container's sandbox, then exec the container's command. Standard library only.

Run as ``python -I -S enter.py SPEC -- COMMAND...`` (by path, not as a module, so that
nothing from the pod's environment is imported while still root), or with ``--probe`` to print
which restrictions this machine allows (see :func:`.confiner.sandbox_support`).

A separate process rather than a ``preexec_fn``: ``unshare(CLONE_NEWNS)`` refuses a
multi-threaded process, and mounting from a forked copy of the runner would not be safe.

SPEC is JSON with these keys (see :mod:`.view` for how the view is planned)::

    network            bool: a fresh network namespace (only a down loopback)
    isolate            bool: private mount, PID and IPC namespaces, with the view below
    tmpfs              [[path, mode, writable], ...]: empty file systems hiding what is below
    binds              [[source, target, writable], ...]: directories put back into the view
    read_only_root     bool: every other mount becomes read-only (/proc, /sys, /dev excepted)
    user               [uid, gid, [groups...]] or null
    no_new_privileges  bool
    cwd                the working directory, entered as the container's user

With ``isolate`` the command runs as PID 1 of its own PID namespace with a fresh ``/proc``:
otherwise a pod could read another pod of the same user through ``/proc/<pid>/root`` or
``/proc/<pid>/environ``. As in a container, PID 1 gets only the signals it handles (and
SIGKILL). This process stays as its parent and exits as it does.

Setup failures print ``podium sandbox: ...`` to stderr (the container log) and exit 128.
"""

import ctypes
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
ISOLATE = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
MS_NOEXEC = 8
# Per-mount flags a read-only remount must keep (statvfs's ST_* share MS_*'s values).
KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096  # + noatime, nodiratime, relatime
KERNEL_TREES = ("/proc", "/sys", "/dev")  # left as they are, as a container runtime does
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


def mount_points() -> list[str]:
    """The current mount points, from /proc/self/mountinfo (octal escapes decoded)."""
    with open("/proc/self/mountinfo") as f:
        fields = [line.split(" ")[4] for line in f]
    return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), p) for p in fields]


def within(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def build_view(tmpfs: list[list[Any]], binds: list[list[Any]], read_only_root: bool) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here may reach the host
    # Open the sources first: the file systems mounted below may hide them.
    sources = [(os.open(src, os.O_PATH | os.O_DIRECTORY), dst, rw) for src, dst, rw in binds]
    for path, mode, _ in tmpfs:
        if os.path.isdir(path):  # missing: nothing to hide
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o}")
    for fd, target, writable in sources:
        os.makedirs(target, exist_ok=True)  # only ever inside one of the fresh file systems
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        if not writable:
            remount_read_only(target)
        os.close(fd)
    if read_only_root:
        writable = {t for _, t, rw in binds if rw} | {p for p, _, rw in tmpfs if rw}
        for point in dict.fromkeys(mount_points()):
            if point in writable or within(point, KERNEL_TREES) or not os.path.exists(point):
                continue  # (a point that does not exist is hidden, hence unreachable)
            try:
                remount_read_only(point)
            except OSError as e:
                if point == "/":
                    raise
                print(f"podium sandbox: warning: {point} stays writable: {e}", file=sys.stderr, flush=True)


def enter(spec: dict[str, Any]) -> None:
    """Set up the sandbox; with ``isolate``, return in the child that is PID 1 of its namespace."""
    flags = (CLONE_NEWNET if spec["network"] else 0) | (ISOLATE if spec["isolate"] else 0)
    if flags:
        unshare(flags)
    if spec["isolate"]:
        build_view(spec["tmpfs"], spec["binds"], spec["read_only_root"])
        _fork_init()
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if spec["user"] is not None:
        uid, gid, groups = spec["user"]
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)  # from root to another user: all capabilities are gone too
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
        signal.signal(killer, signal.SIG_DFL)
        os.kill(os.getpid(), killer)
        os._exit(128 + killer)
    os._exit(os.WEXITSTATUS(status))


def probe() -> dict[str, str | None]:
    """Try each restriction in a throw-away child: ``{restriction: None or why it fails}``."""
    results: dict[str, str | None] = {}
    if os.geteuid() != 0:
        results["user"] = f"the runner is not root (uid {os.geteuid()}): it cannot switch users"
    else:
        results["user"] = _in_child(_switch_user)
    results["network"] = _in_child(lambda: unshare(CLONE_NEWNET))
    results["mounts"] = _in_child(_private_view)
    results["readonly_root"] = _in_child(_read_only_view)
    return results


def _switch_user() -> None:
    os.setgroups([])
    os.setgid(PROBE_USER)
    os.setuid(PROBE_USER)


def _private_view() -> None:
    unshare(ISOLATE)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV)
    failure = _in_child(lambda: mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC))
    if failure:
        raise OSError(failure)


def _read_only_view() -> None:
    _private_view()
    remount_read_only("/")


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
