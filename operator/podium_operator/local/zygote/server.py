"""A warm interpreter for Podium's own trusted job steps: fork a ready process instead of starting Python.

A stage or score container spends most of its life importing numpy, pandas and the object-store
client (about 0.7 s of CPU each time). The local job runner starts this server once; it imports
those modules, then forks one child per such container. The child becomes what the kubelet would
have started: its own session, its memory cgroup, the container's log as stdout/stderr, the
container's sandbox (:func:`podium_operator.local.sandbox.enter.enter`: namespaces, view, user), environment, working
directory and arguments, and runs ``python -m MODULE ARGS`` in-process.

Only the modules in :data:`TRUSTED_MODULES` are run this way: a submitter's code (the predict step)
always starts from a fresh interpreter and never shares memory with anything.

Run as ``python -m podium_operator.local.zygote.server FD [MODULE...]`` (the modules to warm, by default
:data:`TRUSTED_MODULES`). Protocol, one JSON object per line over the socket ``FD``:
the server says ``{"ready": true}`` once warm; the runner sends ``{"id", "module", "args", "env",
"cwd", "log", "cgroup", "sandbox"}``; the server answers ``{"id", "pid"}`` (or ``{"id", "error"}``)
and, when that child ends, ``{"id", "status"}`` (a ``waitpid`` status).
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from typing import Any

TRUSTED_MODULES = ("podium.evaluation.stage", "podium.evaluation.score")
SETUP_FAILED = 128  # as sandbox.enter: the container could not be set up


def trusted_module(argv: Sequence[str], python: str, modules: Sequence[str] = TRUSTED_MODULES) -> str | None:
    """The module of a ``python -m MODULE ...`` command in ``modules``, else None."""
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] in modules and argv[0] in ("python", "python3", python):
        return argv[2]
    return None


def _run_child(request: dict[str, Any]) -> int:
    """In the forked child: become the container, run its module; the exit code."""
    os.setsid()
    if request.get("cgroup"):
        with open(os.path.join(request["cgroup"], "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    if request.get("sandbox"):
        from podium_operator.local.sandbox import enter

        try:
            enter.enter(request["sandbox"])
        except OSError as error:
            print(f"podium sandbox: {error}", file=sys.stderr, flush=True)
            return SETUP_FAILED
    else:
        os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [request["module"], *request["args"]]
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except BaseException:  # as the interpreter would: the traceback to stderr, exit 1
        traceback.print_exc()
        return 1
    return 0


def _fork(request: dict[str, Any], channel: socket.socket) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        channel.close()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        code = _run_child(request)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(channel: socket.socket, modules: Sequence[str]) -> None:
    for module in modules:  # its imports stay loaded; runpy runs the module itself afresh as __main__
        importlib.import_module(module)
        del sys.modules[module]
    import minio  # noqa: F401  # imported lazily by podium.storage: warm it too

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop through the pipe
    children: dict[int, str] = {}
    selector = selectors.DefaultSelector()
    selector.register(channel, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)

    def say(message: dict[str, Any]) -> None:
        channel.sendall(json.dumps(message).encode() + b"\n")

    say({"ready": True})
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj is not channel:
                os.read(wake_read, 4096)
                continue
            data = channel.recv(65536)
            if not data:
                return  # the runner is gone: so are we (children live on until the runner kills them)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = _fork(request, channel)
                except OSError as error:
                    say({"id": request["id"], "error": str(error)})
                    continue
                children[pid] = request["id"]
                say({"id": request["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ident = children.pop(pid, None)
            if ident is not None:
                say({"id": ident, "status": status})


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2:] or TRUSTED_MODULES)
