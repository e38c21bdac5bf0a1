"""What a request asks besides its path (pure, but for the waits): selectors, watch positions, write and
delete options, parsed as the API server parses its query parameters and bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kmock

from podium_operator.local.apiserver import errors, selectors
from podium_operator.local.apiserver.conform import FIELD_VALIDATIONS, WriteOptions
from podium_operator.local.apiserver.store import Change, DeleteOptions, Matcher, api_version


def dry_run(request: kmock.Request) -> bool:
    """``?dryRun=All``; any other value is refused, as the API server does."""
    values = request.url.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def write_options(request: kmock.Request) -> WriteOptions:
    directive = request.params.get("fieldValidation") or "Warn"
    if directive not in FIELD_VALIDATIONS:
        supported = ", ".join(f'"{value}"' for value in FIELD_VALIDATIONS)
        raise errors.bad_request(f'fieldValidation: Unsupported value: "{directive}": supported values: {supported}')
    return WriteOptions(dry_run=dry_run(request), field_validation=directive)


def warning_header(warnings: list[str]) -> str | None:
    """An RFC 7234 ``Warning`` header (code 299 per warning), as the API server sends them and kubectl prints them."""
    if not warnings:
        return None
    return ", ".join('299 - "{}"'.format(text.replace("\\", "\\\\").replace('"', '\\"')) for text in warnings)


def delete_options(request: kmock.Request) -> DeleteOptions:
    body = request.data if isinstance(request.data, Mapping) else {}
    preconditions = body.get("preconditions") or {}
    policy = body.get("propagationPolicy") or request.params.get("propagationPolicy") or "Background"
    dry = dry_run(request) or body.get("dryRun") == ["All"]
    return DeleteOptions(policy, preconditions.get("uid"), preconditions.get("resourceVersion"), dry)


def matcher(request: kmock.Request) -> Matcher:
    """Namespace, name, ``labelSelector`` and ``fieldSelector`` of a list/watch request."""
    try:
        labels = selectors.parse_label_selector(request.params.get("labelSelector", ""))
        fields = selectors.parse_field_selector(request.params.get("fieldSelector", ""))
    except selectors.SelectorError as e:
        raise errors.bad_request(str(e)) from e
    namespace, name = request.namespace, request.name

    def matches(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        return (
            namespace in (None, meta.get("namespace"))
            and name in (None, meta.get("name"))
            and selectors.match_labels(labels, meta.get("labels") or {})
            and selectors.match_fields(fields, obj)
        )

    return matches


def event_type(change: Change, resource: kmock.resource, matches: Matcher) -> str | None:
    """How a watcher with a selector sees a change: objects may enter or leave its view."""
    if change.resource != resource:
        return None
    now_matching = matches(change.obj)
    was_matching = change.old is not None and matches(change.old)
    if change.type != "MODIFIED":
        return change.type if now_matching else None
    if now_matching:
        return "MODIFIED" if was_matching else "ADDED"
    return "DELETED" if was_matching else None


def initial_events_end(resource: kmock.resource, kind: str | None, rv: int) -> dict[str, Any]:
    # The bookmark that ends the initial listing of `sendInitialEvents=true` (watch-list) clients.
    metadata = {"resourceVersion": str(rv), "annotations": {"k8s.io/initial-events-end": "true"}}
    bookmark = {"apiVersion": api_version(resource), "kind": kind, "metadata": metadata}
    return {"type": "BOOKMARK", "object": bookmark}


def deadline(timeout_seconds: str | None) -> float | None:
    if not timeout_seconds or not timeout_seconds.isdigit():
        return None
    return asyncio.get_running_loop().time() + int(timeout_seconds)


async def wait(event: asyncio.Event, until: float | None) -> bool:
    """Wait for the event until the deadline; False if the deadline passed."""
    timeout = None if until is None else until - asyncio.get_running_loop().time()
    if timeout is not None and timeout <= 0:
        return False
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
