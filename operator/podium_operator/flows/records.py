"""Record flow: read and write the operator's own Submission records (the authority, see reconcile.records)."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from podium.errors import PodiumError
from podium_operator.controller import Controller
from podium_operator.reconcile.records import MAX_RECORD_BYTES, SubmissionRecord

logger = logging.getLogger(__name__)


def _load(prefix: str) -> dict[str, SubmissionRecord]:
    """Runs in a worker thread: every record below ``prefix`` (unreadable ones are logged and skipped)."""
    from podium import storage

    records: dict[str, SubmissionRecord] = {}
    for uri in storage.list_uris(prefix):
        if "/records/" not in uri or not uri.endswith(".json"):
            continue
        try:
            record = SubmissionRecord.model_validate_json(storage.read_bytes(uri, limit=MAX_RECORD_BYTES))
        except (PodiumError, ValidationError, ValueError) as error:
            logger.error("skipping the unreadable record %s: %s", uri, error)
            continue
        records[record.uid] = record
    return records


async def namespace_records(ctl: Controller, namespace: str) -> dict[str, SubmissionRecord]:
    """Every record of the namespace by Submission uid (loaded from the object store on first use)."""
    if namespace not in ctl.records:
        async with ctl.record_locks[namespace]:
            if namespace not in ctl.records:
                prefix = ctl.config.namespace_private_prefix(namespace)
                ctl.records[namespace] = await asyncio.to_thread(_load, prefix)
    return ctl.records[namespace]


async def get_record(ctl: Controller, namespace: str, uid: str) -> SubmissionRecord | None:
    return (await namespace_records(ctl, namespace)).get(uid)


async def playground_records(ctl: Controller, namespace: str, playground: str, uid: str) -> list[SubmissionRecord]:
    """The records of one Playground (by uid: those of an earlier one of the same name are not its own)."""
    return [r for r in (await namespace_records(ctl, namespace)).values()
            if r.playground == playground and r.playground_uid == uid]


async def forget_playground(ctl: Controller, namespace: str, uid: str) -> None:
    """Drop a deleted Playground's records from the cache (their objects are deleted with it)."""
    records = await namespace_records(ctl, namespace)
    for key in [key for key, record in records.items() if record.playground_uid == uid]:
        del records[key]


async def put_record(ctl: Controller, namespace: str, record: SubmissionRecord) -> SubmissionRecord:
    """Store the record (object store first, so a crash never leaves a decision only in memory)."""
    from podium import storage

    uri = ctl.config.record_uri(namespace, record.playground, record.playground_uid, record.uid)
    await asyncio.to_thread(storage.write_bytes, uri, record.model_dump_json().encode())
    (await namespace_records(ctl, namespace))[record.uid] = record
    return record
