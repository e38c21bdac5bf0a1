"""A service that runs its own asyncio loop in a daemon thread (the API server, the job runner)."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self


class BackgroundService:
    """``start()`` returns once the loop says it is ready (or re-raises its start-up failure);
    ``stop()`` sets ``_stopping`` in the loop and joins the thread. Subclasses implement ``_run``."""

    thread_name = "podium-service"
    display_name = "The service"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        """Thread body: a new loop running :meth:`_main` (which sets ``ready`` once serving); a start-up
        failure goes to ``failure`` for :meth:`start` to re-raise."""
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main(ready))
        except BaseException as e:  # report startup failures to start()
            failure.append(e)
        finally:
            ready.set()
            self._loop.close()

    async def _main(self, ready: threading.Event) -> None:
        """Create ``self._stopping``, set ``ready``, serve until stopping."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{self.display_name} is already started.")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure), name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Idempotent."""
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
