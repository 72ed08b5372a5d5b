"""Shared helpers for the spool tests: corpus Events turned into `NewRecord`s.

No tests here. The normalisation is a minimal stand-in for the watcher's (see docs/architecture.md):
occurrences from series.count → count/deprecatedCount → 1, last-seen time from
series.lastObservedTime → lastTimestamp → eventTime → firstTimestamp → creation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from eventpipe.spool.rows import NewRecord
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
