"""Shared helpers for the spool tests: corpus Events turned into `NewRecord`s, and a spool
whose appends wait at a gate (`GatedSpool`).

No tests here. The normalisation is a minimal stand-in for the watcher's (see docs/architecture.md):
occurrences from series.count → count/deprecatedCount → 1, last-seen time from
series.lastObservedTime → lastTimestamp → eventTime → firstTimestamp → creation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from eventpipe.metrics import Metrics
from eventpipe.spool import Spool, SpoolFullError
from eventpipe.spool.gaps import Gap
from eventpipe.spool.rows import NewRecord
from eventpipe.spool.writer import SpoolWriter
from tests.corpus_files import CORPUS


def _epoch(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def to_record(obj: dict[str, Any]) -> NewRecord:
    """One corpus Event object as the watcher would hand it to `Spool.append`."""
    meta = obj.get("metadata") or {}
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    series = obj.get("series") or {}
    occurrences = series.get("count") or obj.get("count") or obj.get("deprecatedCount") or 1
    seen = None
    for value in (
        series.get("lastObservedTime"),
        obj.get("lastTimestamp"),
        obj.get("eventTime"),
        obj.get("firstTimestamp"),
        meta.get("creationTimestamp"),
    ):
        seen = _epoch(value)
        if seen is not None:
            break
    return NewRecord(
        uid=str(meta.get("uid", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        event_time=seen,
        namespace=str(meta.get("namespace", "")),
        kind=str(involved.get("kind", "")),
        name=str(involved.get("name", "")),
        reason=str(obj.get("reason") or ""),
        type=str(obj.get("type") or ""),
        occurrences=int(occurrences),
        body=orjson.dumps(obj),
    )


def corpus_records() -> list[NewRecord]:
    """Every Event object in the corpus (watch files hold {type, object} lines)."""
    out: list[NewRecord] = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            obj = orjson.loads(line)
            if "object" in obj and "type" in obj and "metadata" not in obj:
                obj = obj["object"]
            if isinstance(obj, dict) and obj.get("metadata", {}).get("uid"):
                out.append(to_record(obj))
    return out


def synthetic(records: list[NewRecord], n: int, *, offset: int = 0) -> list[NewRecord]:
    """n records cycling through `records` with fresh, increasing resourceVersions and uids."""
    out: list[NewRecord] = []
    for i in range(n):
        r = records[i % len(records)]
        k = offset + i
        out.append(r._replace(uid=f"{r.uid}-{k}", resource_version=str(10_000_000 + k)))
    return out


class GatedSpool:
    """A real spool whose appends wait until the test opens the gate: a stalled disk."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.gate = asyncio.Event()

    async def append_counted(self, records: list[NewRecord], *, stream: str,
                             resource_version: str | None) -> list[tuple[int, int]]:
        await self.gate.wait()
        return await self.spool.append_counted(records, stream=stream,
                                               resource_version=resource_version)

    async def forget(self, uid: str) -> None:
        await self.spool.forget(uid)

    async def reject(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        await self.spool.reject(rows)

    async def head_seq(self) -> int:
        return await self.spool.head_seq()

    async def record_gap(self, *, stream: str, namespace: str, from_rv: str, to_rv: str,
                         after_seq: int) -> Gap:
        return await self.spool.record_gap(stream=stream, namespace=namespace, from_rv=from_rv,
                                           to_rv=to_rv, after_seq=after_seq)


async def run_writer(spool: Spool, records: list[NewRecord], metrics: Metrics,
                     batch: int = 500) -> SpoolWriter:
    """Put `records` through a group-commit writer until it is idle; the writer."""
    writer = SpoolWriter(spool, metrics=metrics, batch_max_events=batch, batch_max_wait=0.01,
                         full_errors=(SpoolFullError,))
    task = asyncio.create_task(writer.run())
    try:
        for record in records:
            await writer.put("s", record.resource_version, record)
        await asyncio.wait_for(writer.wait_idle(), 60)
    finally:
        task.cancel()
    return writer
