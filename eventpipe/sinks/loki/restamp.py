"""Keeping an entry inside Loki's ordering window (`restampBehind`).

Loki refuses an entry more than its window (max_chunk_age / 2, 1 h by default) behind the
newest entry of the same stream: "entry too far behind", HTTP 400. Relists after an outage,
events.k8s.io series that keep their first `eventTime`, and replays produce such entries. The
rule: an entry keeps the event's own time (`entry_timestamp`) unless it is more than the window
behind the newest timestamp this receiver sent to its stream; then it is stamped with the time
eventpipe stored the event (`observed_at`), which only moves forward. The line is unchanged,
so the event's own times stay in it. A refusal Loki still sends (it saw newer entries than this
process, e.g. before a restart) is answered by stamping the entry "now" (`stamped_now`) once.

Both stamps keep the resourceVersion's offset in the low digits, so two events stamped in the
same millisecond stay distinct entries and a retried push is still an exact duplicate.
"""

from __future__ import annotations

import time

from eventpipe.sinks.loki.encode import LokiEntry

_STREAMS_MAX = 20_000
"""Streams whose newest timestamp is remembered; past it the memory starts over (bounded)."""

TOO_FAR_BEHIND = b"entry too far behind"
"""What Loki's 400 says for an entry outside its window."""


class Restamper:
    """Per-stream newest timestamps of one Loki receiver, and the re-stamping rule."""

    def __init__(self, window: float) -> None:
        self._window_ns = int(window * 1e9)
        self._newest: dict[bytes, int] = {}
        self.restamped = 0
        """Entries given another time than the event's."""

    def place(self, entry: LokiEntry, observed_at: float) -> LokiEntry:
        """`entry` as it should be sent: its own time, or the store time when that is too
        far behind the stream's newest."""
        ts = int(entry.ts)
        newest = self._newest.get(entry.labels)
        if newest is not None and ts < newest - self._window_ns:
            ts = max(_stamp(observed_at, ts), newest - self._window_ns)
            entry = entry._replace(ts=str(ts).encode())
            self.restamped += 1
        self._remember(entry.labels, ts, newest)
        return entry

    def stamped_now(self, entry: LokiEntry) -> LokiEntry:
        """`entry` stamped with the current time (Loki refused it as too far behind)."""
        ts = _stamp(time.time(), int(entry.ts))
        self.restamped += 1
        self._remember(entry.labels, ts, self._newest.get(entry.labels))
        return entry._replace(ts=str(ts).encode())

    def _remember(self, labels: bytes, ts: int, newest: int | None) -> None:
        if newest is None and len(self._newest) >= _STREAMS_MAX:
            self._newest.clear()
        if newest is None or ts > newest:
            self._newest[labels] = ts


def _stamp(seconds: float, original_ns: int) -> int:
    """`seconds` at ms precision plus the original stamp's sub-ms offset (its rv digits)."""
    return int(seconds * 1000) * 1_000_000 + original_ns % 1_000_000
