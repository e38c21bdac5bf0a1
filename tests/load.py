"""Continuous client load on a served model (tests and benchmarks): bounded in time and count, loopback only.

Every answer is kept with the submission that gave it (the ``x-podium-submission`` header), so a test can tell
a failure caused by the swap itself (a refused connection, a 502 or 503 while revisions change) from one
that a deliberately broken candidate gave.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import urllib3

SUBMISSION_HEADER = "x-podium-submission"


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer at all (connection refused or reset)
    submission: str
    seconds: float
    body: bytes = b""


@dataclass
class Load:
    """``clients`` threads posting ``body`` to ``url`` until :meth:`stop` (or ``max_seconds``/``max_requests``)."""

    url: str
    body: dict[str, Any]
    clients: int = 4
    max_seconds: float = 300.0
    max_requests: int = 200_000
    pause_seconds: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        payload = json.dumps(self.body).encode()
        deadline = time.monotonic() + self.max_seconds
        pool = urllib3.PoolManager(maxsize=self.clients, retries=False, timeout=urllib3.Timeout(total=30))

        def client() -> None:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if len(self.answers) >= self.max_requests:
                        return
                start = time.perf_counter()
                try:
                    response = pool.request("POST", self.url, body=payload, headers={"content-type": "application/json"})
                    answer = Answer(response.status, response.headers.get(SUBMISSION_HEADER, ""),
                                    time.perf_counter() - start, response.data[:2000])
                except urllib3.exceptions.HTTPError as error:
                    answer = Answer(0, "", time.perf_counter() - start, str(error).encode()[:2000])
                with self._lock:
                    self.answers.append(answer)
                if self.pause_seconds:
                    time.sleep(self.pause_seconds)

        self._threads = [threading.Thread(target=client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return list(self.answers)

    def __exit__(self, *_: object) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def by_submission(self) -> Counter[tuple[str, int]]:
        with self._lock:
            return Counter((a.submission, a.status) for a in self.answers)


def swap_failures(answers: list[Answer], *, broken: set[str] = frozenset()) -> list[Answer]:  # type: ignore[assignment]
    """Answers that failed for a reason other than a broken candidate's own error (these the swap caused)."""
    return [a for a in answers if a.status != 200 and not (a.submission in broken and a.status == 500)]
