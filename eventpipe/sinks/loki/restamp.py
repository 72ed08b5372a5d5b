"""Keeping an entry inside Loki's ordering window (`restampBehind`).

Loki refuses an entry more than its window (max_chunk_age / 2, 1 h by default) behind the
newest entry of the same stream: "entry too far behind", HTTP 400. Relists after an outage,
events.k8s.io series that keep their first `eventTime`, and replays produce such entries. The
rule: an entry keeps the event's own time (`entry_timestamp`) unless it is more than the window
behind the newest timestamp this receiver sent to its stream; then it is stamped with the time
eventpipe stored the event (`observed_at`), which only moves forward. The line is unchanged,
so the event's own times stay in it. A refusal Loki still sends (it saw newer entries than this
process, e.g. before a restart) is answered by stamping the entry "now" (`stamped_now`) once.

A re-stamped entry also carries structured metadata (`structuredMetadata`, unless off):
`event_time`, the timestamp the entry would have had as RFC 3339 with all nine digits (the
event's last-seen time in ms, then the resourceVersion offset), and `restamp_reason`, `window`
(placed by this rule) or `refused` (Loki refused it). Only re-stamped entries carry it: for
the others the entry's own timestamp already is that time, and metadata is stored per entry.

Both stamps keep the resourceVersion's offset in the low digits, so two events stamped in the
same millisecond stay distinct entries and a retried push is still an exact duplicate.
"""

from __future__ import annotations

import calendar
import time

import orjson

from eventpipe.sinks.loki.encode import LokiEntry

_STREAMS_MAX = 20_000
"""Streams whose newest timestamp is remembered; past it the memory starts over (bounded)."""

TOO_FAR_BEHIND = b"entry too far behind"
"""What Loki's 400 says for an entry outside its window."""

EVENT_TIME, RESTAMP_REASON = "event_time", "restamp_reason"
"""Structured metadata keys of a re-stamped entry."""

_METADATA_REFUSED = (
    # Loki 2.9+ with `limits_config.allow_structured_metadata: false` (the entry is refused).
    b"includes structured metadata, but this feature is disallowed",
    # Loki before 2.9 cannot parse a third element (the whole push is refused).
    b"array must contains 2 values",
)


def refuses_metadata(answer: bytes) -> bool:
    """Whether a 400 answer says the server does not take structured metadata."""
    return any(text in answer for text in _METADATA_REFUSED)


class Restamper:
    """Per-stream newest timestamps of one Loki receiver, and the re-stamping rule."""

    def __init__(self, window: float, *, metadata: bool = True) -> None:
        self._window_ns = int(window * 1e9)
        self._newest: dict[bytes, int] = {}
        self.restamped = 0
        """Entries given another time than the event's."""
        self.metadata = metadata
        """Whether re-stamped entries get structured metadata (the sink turns it off when
        the server refuses it)."""

    def place(self, entry: LokiEntry, observed_at: float) -> LokiEntry:
        """`entry` as it should be sent: its own time, or the store time when that is too
        far behind the stream's newest."""
        ts = int(entry.ts)
        newest = self._newest.get(entry.labels)
        if newest is not None and ts < newest - self._window_ns:
            stamp = max(_stamp(observed_at, ts), newest - self._window_ns)
            entry = entry._replace(ts=str(stamp).encode(),
                                   metadata=self._metadata(ts, "window"))
            ts = stamp
            self.restamped += 1
        self._remember(entry.labels, ts, newest)
        return entry

    def stamped_now(self, entry: LokiEntry) -> LokiEntry:
        """`entry` stamped with the current time (Loki refused it as too far behind)."""
        original = int(entry.ts)
        if entry.metadata:  # already re-stamped: keep the event's time it carries
            original = parse_rfc3339_ns(orjson.loads(entry.metadata)[EVENT_TIME])
        ts = _stamp(time.time(), original)
        self.restamped += 1
        self._remember(entry.labels, ts, self._newest.get(entry.labels))
        return entry._replace(ts=str(ts).encode(), metadata=self._metadata(original, "refused"))

    def _metadata(self, original_ns: int, reason: str) -> bytes:
        if not self.metadata:
            return b""
        return orjson.dumps({EVENT_TIME: rfc3339_ns(original_ns), RESTAMP_REASON: reason})

    def _remember(self, labels: bytes, ts: int, newest: int | None) -> None:
        if newest is None and len(self._newest) >= _STREAMS_MAX:
            self._newest.clear()
        if newest is None or ts > newest:
            self._newest[labels] = ts


def _stamp(seconds: float, original_ns: int) -> int:
    """`seconds` at ms precision plus the original stamp's sub-ms offset (its rv digits)."""
    return int(seconds * 1000) * 1_000_000 + original_ns % 1_000_000


def rfc3339_ns(ns: int) -> str:
    """`ns` since the epoch as RFC 3339 in UTC with nine fractional digits."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def parse_rfc3339_ns(text: str) -> int:
    """The inverse of `rfc3339_ns`."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))
