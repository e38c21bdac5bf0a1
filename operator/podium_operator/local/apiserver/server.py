"""Run the Kubernetes API emulator on a loopback port in a background thread.

Synchronous code, ``kubectl`` subprocesses, the official ``kubernetes`` client and kopf
(whose ``KopfRunner`` has its own thread and loop) all need a server that keeps serving
while the caller's thread blocks — hence a dedicated thread with its own event loop.

Usage::

    with ApiServer(crd_paths=[Path("crds")]) as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")
        ...

Or from a shell: ``python -m podium_operator.local.apiserver.server --crds crds/ --kubeconfig kc.yaml``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp.web
import yaml

from podium_operator.local.apiserver.emulator import PodiumEmulator
from podium_operator.local.background import BackgroundService

KUBECONFIG_NAME = "podium-local"
T = TypeVar("T")


class ApiServer(BackgroundService):
    """A started-on-demand HTTP Kubernetes API emulator (plain HTTP, no auth)."""

    thread_name = "podium-apiserver"
    display_name = "The API server"

    def __init__(self, crd_paths: Sequence[Path] = (), host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.emulator = PodiumEmulator()
        self.emulator.load_crd_files(crd_paths)
        self._host = host
        self._port = port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234`` (the port is known once started)."""
        if self._thread is None:
            raise RuntimeError("The API server is not started.")
        return f"http://{self._host}:{self._port}"

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """Write a kubeconfig with cluster/user/context ``podium-local`` pointing here."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(kubeconfig(self.url, namespace), sort_keys=False))
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


def kubeconfig(server_url: str, namespace: str = "default") -> dict[str, object]:
    """A kubeconfig document for a plain-HTTP server without authentication."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": KUBECONFIG_NAME, "cluster": {"server": server_url}}],
        "users": [{"name": KUBECONFIG_NAME, "user": {}}],
        "contexts": [
            {
                "name": KUBECONFIG_NAME,
                "context": {"cluster": KUBECONFIG_NAME, "user": KUBECONFIG_NAME, "namespace": namespace},
            }
        ],
        "current-context": KUBECONFIG_NAME,
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
        print(f"Serving the Kubernetes API on {api.url}", flush=True)
        threading.Event().wait()  # until Ctrl+C


if __name__ == "__main__":
    main()
