"""Turn one Event object (a plain dict, either API group) into a spool record.

core/v1 and events.k8s.io/v1 are two views of the same objects, so the indexed columns are
filled the same way for both: occurrences from `series.count` → `count`/`deprecatedCount` → 1,
last-seen time from `series.lastObservedTime` → `lastTimestamp` → `eventTime` →
`firstTimestamp` → `metadata.creationTimestamp`. The body is stored as served.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventpipe.spool.rows import NewRecord


class MalformedEvent(ValueError):
    """The object lacks what every Event has (metadata.uid, metadata.resourceVersion)."""


# Events arriving together mostly share their timestamps (second resolution, one burst), so
# parsing is memoised; cleared when full rather than LRU, which costs nothing per hit.
_PARSED_TIMES: dict[str, float | None] = {}
_PARSED_TIMES_MAX = 4096


def parse_time(value: object) -> float | None:
    """RFC 3339 (with or without fractional seconds / `Z`) to epoch seconds; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _PARSED_TIMES[value]
    except KeyError:
        pass
    try:
        parsed: float | None = datetime.fromisoformat(value).timestamp()  # takes "Z" since 3.11
    except ValueError:
        parsed = None
    if len(_PARSED_TIMES) >= _PARSED_TIMES_MAX:
        _PARSED_TIMES.clear()
    _PARSED_TIMES[value] = parsed
    return parsed


def last_seen(obj: dict[str, Any]) -> float | None:
    """The event's last-seen time (epoch seconds), by the fallback chain in the module doc."""
    series = obj.get("series")
    if isinstance(series, dict):
        seen = parse_time(series.get("lastObservedTime"))
        if seen is not None:
            return seen
    for key in ("lastTimestamp", "deprecatedLastTimestamp", "eventTime", "firstTimestamp",
                "deprecatedFirstTimestamp"):
        seen = parse_time(obj.get(key))
        if seen is not None:
            return seen
    meta = obj.get("metadata")
    return parse_time(meta.get("creationTimestamp")) if isinstance(meta, dict) else None


def occurrences(obj: dict[str, Any]) -> int:
    """How many times the event happened: series.count → count / deprecatedCount → 1."""
    series = obj.get("series")
    if isinstance(series, dict):
        count = series.get("count")
        if isinstance(count, int) and count > 0:
            return count
    for key in ("count", "deprecatedCount"):
        count = obj.get(key)
        if isinstance(count, int) and count > 0:
            return count
    return 1


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def to_record(obj: dict[str, Any], body: bytes) -> NewRecord:
    """Build the spool record for one Event version; raises MalformedEvent."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise MalformedEvent("event has no metadata object")
    uid = meta.get("uid")
    rv = meta.get("resourceVersion")
    if not isinstance(uid, str) or not uid or not isinstance(rv, str) or not rv:
        raise MalformedEvent("event lacks metadata.uid or metadata.resourceVersion")
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        involved = obj.get("regarding")
        if not isinstance(involved, dict):
            involved = {}
    namespace = _str(meta.get("namespace")) or _str(involved.get("namespace"))
    # Positional, in NewRecord's field order: a keyword call is several times slower, and this
    # runs for every event.
    return NewRecord(
        uid,
        rv,
        last_seen(obj),  # event_time
        namespace,
        _str(involved.get("kind")),
        _str(involved.get("name")),
        _str(obj.get("reason")),
        _str(obj.get("type")),
        occurrences(obj),
        body,
    )
