"""One Event -> one Loki entry: its stream labels, its timestamp and its line (the hot path).

`EntryEncoder.encode` runs once per event and returns a `LokiEntry`: the stream labels as a
sorted JSON object, the timestamp in ns as decimal digits, the line as a JSON string; a push
body is assembled by joining those bytes (`eventpipe.sinks.loki.request`), never by parsing.

Timestamp — never "now": the event's last-seen time (series.lastObservedTime -> lastTimestamp
-> eventTime -> firstTimestamp -> creationTimestamp, `eventpipe.core.timestamps.last_seen`)
truncated to whole milliseconds, plus the resourceVersion modulo 1e6 as nanoseconds (a CRC32 of
it when not numeric). The same version always gets the same timestamp, so a retried push is an
exact duplicate (same stream, timestamp and line) that Loki drops; two versions of one event
in the same millisecond still differ (unless their resourceVersions differ by a multiple of
1e6, and then Loki keeps both anyway because their lines differ).

Labels: fixed `streamLabels` plus templates rendered against the event (with `clusterName`).
Empty values are left out (Loki treats an empty value as an absent label); values are cut at
`MAX_VALUE_CHARS` (Loki's default `max_label_value_length`); a set left empty gets
`job="eventpipe"`, since Loki refuses a stream without labels.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import orjson

from eventpipe.core.jsonbytes import dumps_kept
from eventpipe.core.timestamps import last_seen
from eventpipe.delivery.contract import PermanentSinkError
from eventpipe.layout import RenderError, compile_template
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.loki.config import sanitize_label_name

MAX_VALUE_CHARS = 2048
FALLBACK_STREAM = b'{"job":"eventpipe"}'
ENTRY_OVERHEAD = 7  # `["`, `",`, `]` and the separating comma around timestamp and line
_STREAM_CACHE_MAX = 10_000


class LokiEntry(NamedTuple):
    """The Loki sink's payload: one event's entry, its parts already serialised."""

    labels: bytes
    """The stream's labels as a JSON object with sorted keys (the stream's identity)."""
    ts: bytes
    """The timestamp in ns, decimal digits."""
    line: bytes
    """The log line as a JSON string."""
    metadata: bytes = b""
    """Structured metadata as a JSON object of strings, b"" for none (`restamp.py` sets it
    on re-stamped entries)."""


def entry_timestamp(event: dict[str, object]) -> int:
    """The entry's timestamp in ns (see module doc); PermanentSinkError when it has no time."""
    seen = last_seen(event)
    if seen is None:
        raise PermanentSinkError("event has no timestamp (lastTimestamp, eventTime, ...)")
    millis = round(seen * 1_000_000) // 1000  # via µs: floats like .123 are .12299999...
    meta = event.get("metadata")
    rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
    text = rv if isinstance(rv, str) else ""
    offset = int(text) if text.isdigit() else zlib.crc32(text.encode())
    return millis * 1_000_000 + offset % 1_000_000


class EntryEncoder:
    """Encodes events for one Loki receiver; templates compiled once, label sets cached."""

    def __init__(self, *, name: str, stream_labels: dict[str, str],
                 templates: dict[str, str], layout: object | None, cluster_name: str,
                 max_entry_bytes: int) -> None:
        self._name = name
        self._lines = LineEncoder(name=name, layout=layout, de_dot=False,
                                  cluster_name=cluster_name)
        self._cluster_name = cluster_name
        self._static = {sanitize_label_name(k): v[:MAX_VALUE_CHARS]
                        for k, v in stream_labels.items() if v}
        self._templates = [
            (sanitize_label_name(k), compile_template(v, where=f"receivers.{name}.loki.labels.{k}"))
            for k, v in templates.items()]
        self._max_entry = max_entry_bytes
        # Copying the event to add clusterName is per-event work: only when a template reads it.
        self._with_cluster = any("lusterName" in v for v in templates.values())
        # Label values repeat (a few namespaces, reasons, kinds): serialise each set once.
        self._streams: dict[tuple[str, ...], bytes] = {}

    def encode(self, event: dict[str, object], body: bytes) -> LokiEntry:
        """The entry for one event; PermanentSinkError if it cannot be rendered or sent."""
        stream = self._stream(event)
        ts = str(entry_timestamp(event)).encode()
        line = self._lines.encode(event, body)
        text = dumps_kept(line.decode("utf-8", "replace"))  # held until its batch is sent
        size = len(stream) + len(ts) + len(text) + 2
        if size + ENTRY_OVERHEAD + 64 > self._max_entry:
            raise PermanentSinkError(
                f"receivers.{self._name}: entry of {size} bytes does not fit in "
                f"maxRequestBytes ({self._max_entry})")
        return LokiEntry(stream, ts, text)

    def _stream(self, event: dict[str, object]) -> bytes:
        if not self._templates:
            values: tuple[str, ...] = ()
        else:
            scope = {**event, "clusterName": self._cluster_name} if self._with_cluster else event
            try:
                values = tuple(t.render(scope)[:MAX_VALUE_CHARS] for _, t in self._templates)
            except RenderError as exc:
                raise PermanentSinkError(f"receivers.{self._name}.loki.labels: {exc}") from exc
        cached = self._streams.get(values)
        if cached is not None:
            return cached
        labels = dict(self._static)
        for (label, _), value in zip(self._templates, values, strict=True):
            if value:
                labels[label] = value
        stream = (dumps_kept(labels, option=orjson.OPT_SORT_KEYS) if labels  # cached
                  else FALLBACK_STREAM)
        if len(self._streams) >= _STREAM_CACHE_MAX:
            self._streams.clear()  # bounded: a templated high-cardinality label must not leak
        self._streams[values] = stream
        return stream
