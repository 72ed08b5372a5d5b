"""Benchmark input built from the real corpus, exactly as the fake API server would serve it.

Every measurement uses the same recipe: the corpus's first 2,000 Events cycled with a fresh
uid and name each (`tests.fakeapi.corpus.synthetic`), put through the fake server's own store
so resourceVersions, defaults and the serialised watch line are byte-for-byte what a watcher
receives from `python -m tests.fakeapi`.
"""

from __future__ import annotations

from collections.abc import Iterator

from eventpipe.spool.rows import NewRecord
from eventpipe.watch.normalize import to_record
from tests.fakeapi.corpus import corpus_paths, synthetic, templates_from
from tests.fakeapi.store import EventStore

_CHUNK = 10_000

# A plain row-by-row INSERT of one record with its observed_at and count_delta, for filling a
# spool without the pipeline; the columns are the record's fields, named as declared.
INSERT_ROW = (f"INSERT INTO events ({', '.join(NewRecord._fields)}, observed_at, "
              "count_delta) "
              f"VALUES ({', '.join('?' * (len(NewRecord._fields) + 2))})")


def insert_values(record: NewRecord, observed_at: float) -> tuple[object, ...]:
    """INSERT_ROW's parameters: `record` first seen at `observed_at` (count_delta: all of its
    occurrences)."""
    return (*record, observed_at, record.occurrences)


def watch_lines(n: int, *, start_rv: int = 0) -> list[bytes]:
    """`n` core/v1 watch lines (`{"type":"ADDED","object":...}\\n`), unique uid and rv each."""
    source = synthetic(templates_from(corpus_paths()))
    store = EventStore()
    store.rv = store.base = start_rv
    store.put_many(next(source) for _ in range(n))
    return [change.line("core") for change in store.history]


def spool_records(n: int, *, start: int = 0) -> Iterator[list[NewRecord]]:
    """`n` spool records in chunks, normalised by eventpipe's own `to_record`.

    resourceVersions run 1..n, so a fake server started with `--start-rv` above n continues
    them the way a real cluster's revisions keep growing.
    """
    source = synthetic(templates_from(corpus_paths()), start=start)
    done = 0
    while done < n:
        store = EventStore()
        store.rv = store.base = done  # one small store per chunk keeps memory flat
        count = min(_CHUNK, n - done)
        store.put_many(next(source) for _ in range(count))
        yield [to_record(c.obj, c.line("core")[len(b'{"type":"ADDED","object":'):-2])
               for c in store.history]
        done += count
