"""Run the Kubernetes API emulator on a loopback port in a background thread.

Synchronous code, ``kubectl`` subprocesses, the official ``kubernetes`` client and kopf
(whose ``KopfRunner`` has its own thread and loop) all need a server that keeps serving
while the caller's thread blocks — hence a dedicated thread with its own event loop.

Usage::

    with ApiServer(crd_paths=[Path("crds")]) as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")     # the admin, plus a context per user
        token = api.add_user("alice", role="participant")  # a user bound to the chart's ClusterRole
        api.write_kubeconfig(tmp_path / "alice", user="alice")  # alice's credentials only
        ...

Every request needs a bearer token (see :mod:`.auth`), in a header or leading the path: ``api.url`` carries
the admin's in its path, for in-process clients that set none; ``api.server_url`` is the bare address.

Or from a shell: ``python -m podium_operator.local.apiserver.server --crds crds/ --kubeconfig kc.yaml``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp.web
import yaml

from podium_operator.local.apiserver.auth import ADMIN, TOKEN_PATH, User
from podium_operator.local.apiserver.emulator import PodiumEmulator
from podium_operator.local.background import BackgroundService

KUBECONFIG_NAME = "podium-local"
T = TypeVar("T")


class ApiServer(BackgroundService):
    """A started-on-demand HTTP Kubernetes API emulator (plain HTTP, bearer tokens, the chart's RBAC)."""

    thread_name = "podium-apiserver"
    display_name = "The API server"

    def __init__(self, crd_paths: Sequence[Path] = (), host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.emulator = PodiumEmulator()
        self.emulator.load_crd_files(crd_paths)
        self._host = host
        self._port = port

    @property
    def server_url(self) -> str:
        """The address, e.g. ``http://127.0.0.1:41234`` (the port is known once started); requests need a token."""
        if self._thread is None:
            raise RuntimeError("The API server is not started.")
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """A base URL for clients that send no token: its path carries the admin's (``.../podium-token/<token>``)."""
        return token_url(self.server_url, self.admin_token)

    @property
    def admin_token(self) -> str:
        return self.emulator.identities.admin_token

    def add_user(self, name: str, *, groups: Sequence[str] = (), role: str | None = "participant",
                 namespaces: Sequence[str | None] = ("default",)) -> str:
        """Register a user bound to ``role`` (a chart ClusterRole, or ``participant``/``owner``) in
        ``namespaces`` (None: cluster-wide; ``role=None``: no role); return its bearer token."""
        return self.call(lambda: self.emulator.identities.add_user(name, groups=groups, role=role,
                                                                   namespaces=namespaces))

    def token_of(self, name: str) -> str:
        return self.call(self.emulator.identities.token_of, name)

    def users(self) -> dict[str, User]:
        """Every user by name, the admin (``podium-admin``) included."""
        return self.call(self.emulator.identities.users)

    def write_kubeconfig(self, path: Path, namespace: str = "default", *, user: str | None = None,
                         extensions: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
        """Write a kubeconfig for this server (readable by its owner only: it holds bearer tokens).

        By default, the admin's: context ``podium-local`` (current) plus one context per user, named after
        the user (``kubectl --context alice``); with ``user``, that user's context and credentials only.
        ``extensions`` (user → extension name → value) go into those users' entries (``user.extensions``).
        """
        names = [user] if user is not None else [ADMIN, *sorted(set(self.users()) - {ADMIN})]
        tokens = {name: self.token_of(name) for name in names}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")  # replaced at once: clients may be reading it
        partial.unlink(missing_ok=True)
        partial.touch(mode=0o600)
        document = kubeconfig(self.server_url, namespace, tokens, extensions)
        partial.write_text(yaml.safe_dump(document, sort_keys=False))
        partial.replace(path)
        return path

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the server's loop: the emulator must not be touched from other threads."""
        if self._loop is None or self._thread is None:
            return fn(*args)

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def load_crds(self, paths: Sequence[Path]) -> None:
        """Create or update the CRDs from YAML files or directories (also while running)."""
        self.call(self.emulator.load_crd_files, paths)

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve(ready))
        except BaseException as e:  # report startup failures (e.g. a busy port) to start()
            failure.append(e)
        finally:
            ready.set()
            # Let cancelled connection handlers finish, so none is destroyed while pending.
            self._loop.run_until_complete(self._drain())
            self._loop.close()

    @staticmethod
    async def _drain() -> None:
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        # Cancel a handler when its client disconnects, so that idle watches do not pile up.
        # No access log: kopf and the clients make many requests; kmock records them anyway.
        server = aiohttp.web.Server(self.emulator, handler_cancellation=True, access_log=None)
        runner = aiohttp.web.ServerRunner(server, shutdown_timeout=0.5)
        await runner.setup()
        try:
            # Entering the emulator makes kmock render errors as k8s Status responses.
            async with self.emulator:
                site = aiohttp.web.TCPSite(runner, self._host, self._port)
                await site.start()
                self._port = _bound_port(runner)
                ready.set()
                await self._stopping.wait()
        finally:
            await runner.cleanup()


def _bound_port(runner: aiohttp.web.BaseRunner) -> int:
    host_port = runner.addresses[0]
    return int(host_port[1])


def token_url(server_url: str, token: str) -> str:
    """The server's address with ``token`` leading the path: a client that sends no header is that user."""
    return f"{server_url}{TOKEN_PATH}{token}"


def kubeconfig(server_url: str, namespace: str = "default", tokens: dict[str, str] | None = None,
               extensions: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, object]:
    """A kubeconfig document for this plain-HTTP server: a context per ``tokens`` entry (user → token), in order,
    the first current, named after the user (the admin's: ``podium-local``); no tokens: one without credentials.

    Each context's cluster has the token in its server URL (kubectl sends no credentials over plain HTTP)
    and its user the same token (what token-aware clients send as a header), plus that user's ``extensions``
    (name → value), as kubeconfig's ``NamedExtension`` list.
    """
    entries = list((tokens or {ADMIN: ""}).items())
    names = {name: KUBECONFIG_NAME if name == ADMIN else name for name, _ in entries}

    def user(name: str, token: str) -> dict[str, Any]:
        found = (extensions or {}).get(name) or {}
        listed = [{"name": key, "extension": dict(value)} for key, value in found.items()]
        return {**({"token": token} if token else {}), **({"extensions": listed} if listed else {})}

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": names[name], "cluster": {"server": token_url(server_url, token) if token else server_url}}
                     for name, token in entries],
        "users": [{"name": names[name], "user": user(name, token)} for name, token in entries],
        "contexts": [
            {"name": names[name], "context": {"cluster": names[name], "user": names[name], "namespace": namespace}}
            for name, _ in entries
        ],
        "current-context": names[entries[0][0]],
        "preferences": {},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Podium's local Kubernetes API emulator.")
    parser.add_argument("--crds", type=Path, action="append", default=[], help="CRD YAML file or directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, help="where to write a kubeconfig for this server")
    args = parser.parse_args(argv)
    with ApiServer(crd_paths=args.crds, host=args.host, port=args.port) as api:
        if args.kubeconfig:
            api.write_kubeconfig(args.kubeconfig)
        print(f"Serving the Kubernetes API on {api.server_url} (bearer tokens; see --kubeconfig)", flush=True)
        threading.Event().wait()  # until Ctrl+C


if __name__ == "__main__":
    main()
