"""``GET .../pods/<name>/log``: a container's log, as the kubelet serves it through the API server.

The job runner (local mode's kubelet) keeps each container's stdout and stderr in a file; the emulator
is handed where (a :data:`LogSource`) and serves it with the query parameters ``kubectl logs`` sends:
``container`` (required when the pod has several), ``tailLines``, ``limitBytes``, ``follow`` (until the
container ends) and ``previous`` (there is never a previous one: containers are not restarted). Errors
are worded as the real server's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from podium_operator.local.apiserver import errors

LogSource = Callable[[str, str, str], Path]  # namespace, pod, container → that container's log file
FOLLOW_POLL_S = 0.2


def container_name(pod: Mapping[str, Any], params: Mapping[str, str]) -> str:
    """The container the request is for; 400 when it names none of a pod with several, or an unknown one."""
    name = _meta(pod).get("name")
    spec = pod.get("spec") or {}
    containers = [c.get("name") for c in spec.get("containers") or []]
    init_containers = [c.get("name") for c in spec.get("initContainers") or []]
    wanted = params.get("container")
    if not wanted:
        if len(containers) == 1:
            return str(containers[0])
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if init_containers:
            message += f" or one of the init containers: [{' '.join(init_containers)}]"
        raise errors.bad_request(message)
    if wanted not in containers + init_containers:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def finished(pod: Mapping[str, Any] | None, container: str) -> bool:
    """Whether no more output can come: the pod is gone or over, or the container has terminated."""
    if pod is None:
        return True
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    return any(s.get("name") == container and (s.get("state") or {}).get("terminated") for s in statuses)


async def serve(pod: Mapping[str, Any], params: Mapping[str, str], source: LogSource | None,
                current: Callable[[], Mapping[str, Any] | None]) -> bytes | AsyncIterator[bytes]:
    """The log (text) a request for ``pod`` gets: bytes, or a stream when following; ``current()`` re-reads
    the pod while following."""
    container = container_name(pod, params)
    name, namespace = _meta(pod).get("name", ""), _meta(pod).get("namespace", "")
    if params.get("previous") == "true":
        raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
    path = source(namespace, name, container) if source is not None else None
    if path is None or not path.is_file():
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                                 f"{_waiting_reason(pod, container)}")
    content = await asyncio.to_thread(path.read_bytes)
    tail, limit = _int(params, "tailLines"), _int(params, "limitBytes")
    if params.get("follow") != "true":
        return _cut(content, tail, limit)
    return _follow(path, content, tail, limit, lambda: finished(current(), container))


async def _follow(path: Path, content: bytes, tail: int | None, limit: int | None,
                  done: Callable[[], bool]) -> AsyncIterator[bytes]:
    first = _cut(content, tail, None)
    sent = min(len(first), limit) if limit is not None else len(first)
    yield first[:sent]
    position = len(content)
    while limit is None or sent < limit:
        over = done()  # taken before reading, so that the last output is read after the end
        more = await asyncio.to_thread(_read_from, path, position)
        position += len(more)
        if more:
            chunk = more if limit is None else more[: limit - sent]
            sent += len(chunk)
            yield chunk
        elif over:
            return
        else:
            await asyncio.sleep(FOLLOW_POLL_S)


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(position)
            return file.read()
    except FileNotFoundError:  # the Job was deleted: its pods' directories go with it
        return b""


def _cut(content: bytes, tail: int | None, limit: int | None) -> bytes:
    if tail is not None:
        lines = content.splitlines(keepends=True)
        content = b"".join(lines[-tail:]) if tail > 0 else b""
    return content[:limit] if limit is not None else content


def _int(params: Mapping[str, str], key: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if not value.lstrip("-").isdigit():
        raise errors.bad_request(f'{key}: Invalid value: "{value}": must be an integer')
    number = int(value)
    if key == "limitBytes" and number < 1:
        raise errors.unprocessable(f"limitBytes: Invalid value: {number}: must be greater than 0")
    if number < 0:
        raise errors.unprocessable(f"{key}: Invalid value: {number}: must be greater than or equal to 0")
    return number


def _waiting_reason(pod: Mapping[str, Any], container: str) -> str:
    status = pod.get("status") or {}
    for found in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        if found.get("name") == container:
            return str(((found.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating")
    return "ContainerCreating"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}
