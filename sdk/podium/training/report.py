"""Progress reports and checkpoints of a training Job, over presigned URLs (bounded rate, one small object)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from podium import storage
from podium.errors import NotFound
from podium.training.wire import MAX_DATA_BYTES, ProgressReport

logger = logging.getLogger(__name__)
MAX_CHECKPOINT_BYTES = MAX_DATA_BYTES


class Reporter:
    """Writes :class:`ProgressReport` s to one URL, at most one per ``interval`` seconds (the last always).

    A failed write is logged and skipped: progress is for people, losing one must not stop training.
    """

    def __init__(self, url: str, *, interval: float, algorithm: str, device: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.interval, self.clock = url, interval, clock
        self.base = {"algorithm": algorithm, "device": device}
        self.last: float | None = None
        self.writes = 0
        self.latest: dict[str, Any] = {}

    def update(self, *, force: bool = False, **fields: Any) -> bool:
        """Remember ``fields``; write them when the interval has passed (or ``force``). True when written."""
        self.latest.update({k: v for k, v in fields.items() if v is not None})
        now = self.clock()
        if not force and self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        report = ProgressReport.model_validate({**self.base, **self.latest})
        try:
            storage.write_bytes(self.url, report.model_dump_json(exclude_none=True).encode())
            self.writes += 1
        except Exception as error:  # noqa: BLE001 - progress is best effort
            logger.warning("could not write a progress report: %s", error)
        print(f"[{report.state}] {report.line()}", flush=True)
        return True


def load_checkpoint(url: str | None) -> dict[str, Any] | None:
    """The checkpoint a previous pod of this Job left (a torch state, weights only), or None."""
    if not url:
        return None
    import torch

    try:
        data = storage.read_bytes(url, limit=MAX_CHECKPOINT_BYTES)
    except NotFound:
        return None
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError("checkpoint: not a state dictionary; delete it to start over")
    return state


def save_checkpoint(url: str | None, state: dict[str, Any]) -> None:
    if not url:
        return
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    storage.write_bytes(url, buffer.getvalue())


def write_json(url: str, value: Any) -> None:
    storage.write_bytes(url, json.dumps(value, allow_nan=False, default=str).encode())
