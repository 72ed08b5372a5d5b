"""Turning a batch of `LokiEntry`s into Loki push bodies of bounded size.

A batch (up to `batch.maxEvents` entries, in spool order) is cut into consecutive chunks whose
uncompressed JSON body stays within `maxRequestBytes`; each chunk becomes one request. Cutting
in spool order (not per stream) keeps the mapping chunk -> batch positions trivial, which is what
`ItemFailure` needs when one request of several fails. Inside a chunk entries are grouped into
streams by their label JSON and sorted by timestamp, as Loki expects within a stream.

The body is built by joining the bytes `EntryEncoder` produced; nothing is parsed again. The
size estimate counts every byte of the body, so a chunk never exceeds the limit. An entry with
structured metadata (a re-stamped one, `restamp.py`) is `["<ns>", line, {...}]`, Loki's JSON
form since 2.9; `build_body(..., metadata=False)` leaves the third element out, for a server
that refuses it.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Sequence

from eventpipe.sinks.loki.encode import ENTRY_OVERHEAD, LokiEntry

_HEAD = b'{"streams":['
_TAIL = b"]}"
# `{"stream":` + labels + `,"values":[` + values + `]}` and the comma between streams.
_STREAM_OVERHEAD = len(b'{"stream":,"values":[]},')
# Below this, compressing on the loop is cheaper than a hop to a worker thread.
_THREAD_FROM = 64 * 1024


def plan_chunks(entries: Sequence[LokiEntry], max_bytes: int) -> list[list[int]]:
    """Positions of `entries` cut into consecutive chunks whose body fits in `max_bytes`.

    An entry too big even alone still gets a chunk of its own (the encoder refuses those).
    """
    chunks: list[list[int]] = []
    current: list[int] = []
    streams: set[bytes] = set()
    base = len(_HEAD) + len(_TAIL)
    size = base
    for index, (labels, ts, line, metadata) in enumerate(entries):
        entry = len(ts) + len(line) + ENTRY_OVERHEAD
        if metadata:
            entry += len(metadata) + 1  # and its comma
        extra = entry if labels in streams else entry + len(labels) + _STREAM_OVERHEAD
        if current and size + extra > max_bytes:
            chunks.append(current)
            current, streams, size = [], set(), base
            extra = entry + len(labels) + _STREAM_OVERHEAD
        current.append(index)
        streams.add(labels)
        size += extra
    if current:
        chunks.append(current)
    return chunks


def build_body(entries: Sequence[LokiEntry], positions: Sequence[int], *,
               metadata: bool = True) -> bytes:
    """The JSON push body for `entries[positions]`: one stream per label set, sorted by ts;
    entries' structured metadata included unless `metadata` is False."""
    groups: dict[bytes, list[tuple[int, bytes, bytes]]] = {}
    for index in positions:
        labels, ts, line, meta = entries[index]
        group = groups.get(labels)
        if group is None:
            group = groups[labels] = []
        if meta and metadata:  # rare (re-stamped entries): the copy costs the others nothing
            line = b"%b,%b" % (line, meta)
        group.append((int(ts), ts, line))
    # One join over all the pieces: concatenating per entry allocated and copied every line
    # twice more, and those copies were most of the cost of a body.
    parts: list[bytes] = [_HEAD]
    for labels, items in groups.items():
        items.sort(key=_first)  # stable: equal timestamps keep spool order
        parts += (b'{"stream":', labels, b',"values":[')
        for _, ts, line in items:
            parts += (b'["', ts, b'",', line, b"],")
        parts[-1] = b"]]},"  # the stream's last value closes the values and the stream
    if groups:
        parts[-1] = b"]]}"  # no comma after the last stream
    parts.append(_TAIL)
    return b"".join(parts)


async def gzip_body(body: bytes) -> bytes:
    """gzip at level 1 (level 6 shrinks corpus batches only a little more for several times the
    CPU; docs/performance.md), big bodies in a worker thread so the watcher sharing the loop is
    not held up; mtime 0: same input, same bytes."""
    if len(body) < _THREAD_FROM:
        return gzip.compress(body, compresslevel=1, mtime=0)
    return await asyncio.to_thread(gzip.compress, body, 1, mtime=0)


def _first(item: tuple[int, bytes, bytes]) -> int:
    return item[0]
