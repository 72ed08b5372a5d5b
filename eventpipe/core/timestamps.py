"""When an Event happened: RFC 3339 parsing and the last-seen fallback chain both API groups share.

core/v1 and events.k8s.io/v1 are two views of the same objects, so the last-seen time is read
the same way for both: `series.lastObservedTime` → `lastTimestamp` → `eventTime` →
`firstTimestamp` → `metadata.creationTimestamp`. The watch indexes it in the spool; sinks use
it to name an index or stamp a log line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
