"""Progress of the SDK's long calls (uploads, waits) as one status line on stderr, rewritten in place.

Shown only on a terminal, and never with ``progress=False``: a log, a pipe or a notebook's captured
output gets nothing. The line ticks on its own (elapsed seconds) while a call blocks, and is ended
with the final state, so what stays on screen is one line per call.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import IO, Any


def shown(progress: bool | None, stream: IO[str] | None = None) -> bool:
    """``progress`` True/False decides; None (the default everywhere) means: when ``stream`` is a terminal."""
    if progress is not None:
        return progress
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a file at all
        return False


class Status:
    """``with Status("waiting for 3 submissions", show=True) as line: line.set("1 Evaluated, 2 Running")``."""

    def __init__(self, label: str, *, show: bool | None = None, stream: IO[str] | None = None,
                 tick: float = 1.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.show = shown(show, self.stream)
        self._text = ""
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._width = 0
        self._ticker = threading.Thread(target=self._tick, args=(tick,), daemon=True, name="podium-progress")

    def __enter__(self) -> Status:
        if self.show:
            self._draw()
            self._ticker.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close("failed" if exc_type is not None else None)

    def set(self, text: str) -> None:
        self._text = text
        self._draw()

    def close(self, text: str | None = None) -> None:
        """End the line, with ``text`` (default: the last one) as its final state."""
        if self._stop.is_set():
            return
        self._stop.set()
        if text is not None:
            self._text = text
        if self.show:
            self._draw(end="\n")

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            self._draw()

    def _draw(self, end: str = "") -> None:
        if not self.show:
            return
        elapsed = time.monotonic() - self._started
        line = f"{self.label}: {self._text} ({elapsed:.0f}s)" if self._text else f"{self.label} ({elapsed:.0f}s)"
        with self._lock:
            padding = " " * max(0, self._width - len(line))
            self._width = len(line)
            try:
                self.stream.write(f"\r{line}{padding}{end}")
                self.stream.flush()
            except (OSError, ValueError):
                self.show = False


class Transfer(Status):
    """An upload's progress, fed by MinIO's client (``set_meta``, then ``update(n)`` per chunk sent)."""

    def __init__(self, label: str, *, show: bool | None = None, stream: IO[str] | None = None) -> None:
        super().__init__(label, show=show, stream=stream)
        self.total = 0
        self.sent = 0

    def set_meta(self, object_name: str = "", total_length: int = 0, **_: Any) -> None:
        self.total = total_length
        self.set(self._shown())

    def update(self, length: int) -> None:
        self.sent += length
        self.set(self._shown())

    def _shown(self) -> str:
        if not self.total:
            return _size(self.sent)
        return f"{_size(self.sent)} of {_size(self.total)} ({100 * self.sent // self.total}%)"


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"
