"""The durable spool: every Event version is committed here before anything else happens.

One `Spool` per process owns two SQLite connections to one WAL file: a write connection used
by the watcher's appends, acks, retention and budget drops (serialised by an asyncio lock so no
two transactions interleave), and a read connection for sink workers and queries, which WAL
lets run while a commit is in flight. aiosqlite runs each connection in its own thread, so the
event loop never blocks on SQLite. Another process (the CLI) may open the same file at once.

Invariants (tested against a model in tests/test_spool_model.py):
- seq strictly increases and is never reused (AUTOINCREMENT); observed_at never decreases.
- a (resource_version, uid) pair is stored at most once.
- the resume point of a stream is committed with the batch it covers.
- a row leaves only through retention (acked by every receiver, older than the history
  window, no dead letter) or a budget drop, which is always reported through `on_drop`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import aiosqlite

from eventpipe.spool import disk, gaps, reading, stats, writing
from eventpipe.spool.counting import (
    MAX_UIDS,
    RECENT_UIDS,
    WARM_CHUNK_ROWS,
    WARM_WINDOW_SECONDS,
    OccurrenceBook,
)
from eventpipe.spool.room import OnDrop, SpoolRoom
from eventpipe.spool.rows import NewRecord, StoredRow
from eventpipe.spool.schema import (
    READER_CACHE_KIB,
    WRITER_CACHE_KIB,
    open_reader,
    open_writer,
    page_size,
)

WHEN_FULL = {"block": "block", "dropOldest": "dropOldest", "drop_oldest": "dropOldest"}
RETENTION_CHUNK = 10_000
P = ParamSpec("P")
T = TypeVar("T")


class Spool:
    """SQLite-backed event spool; create with `await Spool.open(path)`."""

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        *,
        disk_plan: disk.DiskPlan,
        rows: int,
        book: OccurrenceBook,
        last_observed: float,
        max_bytes: int | None,
        when_full: str,
        history_window: float,
        on_drop: OnDrop | None,
        clock: Callable[[], float],
    ) -> None:
        """Use `Spool.open`; this only stores what it prepared."""
        self._path = path
        self._writer = writer
        self._reader = reader
        self._disk = disk_plan
        self._room = SpoolRoom(path, writer, disk_plan=disk_plan, max_bytes=max_bytes,
                               when_full=when_full, on_drop=self._dropped)
        self._book = book
        self.rows = rows
        """Event versions stored now (kept up to date by every insert and delete)."""
        self._last_observed = last_observed
        self._max_bytes = max_bytes
        self._history_window = history_window
        self._on_drop = on_drop
        self._clock = clock
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        max_bytes: int | None = None,
        when_full: str = "block",
        history_window: float = 7 * 86400,
        on_drop: OnDrop | None = None,
        clock: Callable[[], float] = time.time,
        writer_cache_kib: int = WRITER_CACHE_KIB,
        reader_cache_kib: int = READER_CACHE_KIB,
        occurrence_book_max_uids: int = MAX_UIDS,
        occurrence_book_recent_uids: int = RECENT_UIDS,
    ) -> Spool:
        """Open or create the spool file.

        max_bytes: what the database, its WAL and the WAL index may take on disk together
        (eventpipe.spool.disk).
        when_full: "block" (append raises SpoolFullError) or "dropOldest" (delete the oldest
        rows, acked or not, report them through on_drop(count, "budget"), and retry).
        clock: wall-clock source for observed_at and retention; tests pass a fake.
        writer_cache_kib, reader_cache_kib: SQLite page cache of each connection.
        occurrence_book_max_uids: most uids the occurrence book remembers (counting.py).
        occurrence_book_recent_uids: most of its newest entries held in a dict (counting.py).
        """
        policy = WHEN_FULL.get(when_full)
        if policy is None:
            raise ValueError(f"when_full must be 'block' or 'dropOldest', got {when_full!r}")
        path = Path(path)
        writer = await open_writer(path, synchronous=synchronous, cache_kib=writer_cache_kib)
        try:
            disk_plan = disk.plan(max_bytes, await page_size(writer))
            await disk.apply(writer, disk_plan)
            reader = await open_reader(path, cache_kib=reader_cache_kib)
        except BaseException:
            await writer.close()
            raise
        book = OccurrenceBook(now=clock(), max_uids=occurrence_book_max_uids,
                              recent_uids=occurrence_book_recent_uids)
        count, last_observed = await _scan_at_open(writer, book, cache_kib=writer_cache_kib)
        return cls(
            path,
            writer,
            reader,
            disk_plan=disk_plan,
            rows=count,
            book=book,
            last_observed=last_observed,
            max_bytes=max_bytes,
            when_full=policy,
            history_window=history_window,
            on_drop=on_drop,
            clock=clock,
        )

    async def close(self) -> None:
        """Wait for the transaction in flight, then close both connections (idempotent)."""
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            await self._reader.close()
            await self._writer.close()  # the last connection out checkpoints the WAL

    # -- watcher side ---------------------------------------------------------------------

    async def append(
        self, records: Sequence[NewRecord], *, stream: str, resource_version: str | None
    ) -> list[int]:
        """Store the records not stored yet, and the resume point, in one commit.

        Returns the indices into `records` of the rows inserted, in order. Raises
        SpoolFullError when the budget is reached and the policy is "block" (nothing stored).
        """
        counted = await self.append_counted(records, stream=stream,
                                            resource_version=resource_version)
        return [index for index, _ in counted]

    async def append_counted(
        self, records: Sequence[NewRecord], *, stream: str, resource_version: str | None
    ) -> list[tuple[int, int]]:
        """`append`, returning (index, count_delta) per inserted record for the event counter."""
        return await asyncio.shield(self._append(records, stream, resource_version))

    @property
    def largest_append(self) -> int | None:
        """Most event bytes one append should carry, so the WAL stays within its share of
        the byte budget (eventpipe.spool.disk); None without a budget."""
        return self._disk.largest_append

    async def reject(self, rows: Sequence[tuple[str, str, bytes]]) -> None:
        """Keep watch lines that are not valid Events: (stream, error, raw line)."""
        now = self._clock()
        async with self._lock, writing.transaction(self._writer):
            await self._writer.executemany(
                "INSERT INTO rejected (observed_at, stream, error, line) VALUES (?, ?, ?, ?)",
                [(now, stream, error, bytes(line)) for stream, error, line in rows])

    async def _append(
        self, records: Sequence[NewRecord], stream: str, resource_version: str | None
    ) -> list[tuple[int, int]]:
        async with self._lock:
            await self._room.before_append(records)
            # First try without looking up stored versions: the UNIQUE index checks anyway,
            # and on the watch path nothing is ever stored twice, so the lookup would be pure
            # cost. A relist's duplicates fail the INSERT and take the slow path.
            check_stored = False
            while True:
                observed_at = max(self._clock(), self._last_observed)
                try:
                    # The watch path's append is one statement: no BEGIN/COMMIT round trips.
                    async with writing.transaction(self._writer, explicit=check_stored):
                        indices, updates = await writing.insert_batch(
                            self._writer,
                            records,
                            stream=stream,
                            resource_version=resource_version,
                            book=self._book,
                            observed_at=observed_at,
                            check_stored=check_stored,
                        )
                except sqlite3.IntegrityError:
                    if check_stored:
                        raise
                    check_stored = True
                    continue
                except Exception as exc:
                    if not writing.is_full(exc):
                        raise
                    await self._room.after_full(records, exc)
                    continue
                self._last_observed = observed_at
                self._book.apply(updates, now=observed_at)
                self.rows += len(indices)
                await self._room.bound_wal()
                return indices

    def _dropped(self, count: int, reason: str) -> None:
        self.rows -= count
        if self._on_drop is not None:
            self._on_drop(count, reason)

    async def forget(self, uid: str) -> None:
        """DELETED seen: the Event expired; drop its occurrence bookkeeping."""
        self._book.forget(uid)

    async def record_gap(self, *, stream: str, namespace: str, from_rv: str, to_rv: str,
                         after_seq: int) -> gaps.Gap:
        """Record that `stream` was not watched from `from_rv` to `to_rv`; the relist stored
        its versions after `after_seq` (eventpipe.spool.gaps)."""
        return await self._write(gaps.record_gap, stream=stream, namespace=namespace,
                                 from_rv=from_rv, to_rv=to_rv, after_seq=after_seq,
                                 now=max(self._clock(), self._last_observed))

    async def resume_point(self, stream: str) -> str | None:
        """resourceVersion to resume `stream` from, saved with its last committed batch."""
        return await reading.resume_point(self._reader, stream)

    # -- sink side --------------------------------------------------------------------------

    async def head_seq(self) -> int:
        """Highest seq stored (0 if none)."""
        return await reading.head_seq(self._reader)

    async def read_after(self, after_seq: int, limit: int) -> list[StoredRow]:
        """Up to `limit` rows with seq > after_seq, ascending."""
        return await reading.read_after(self._reader, after_seq, limit)

    async def read_since(
        self,
        *,
        since: float | None = None,
        from_seq: int | None = None,
        after_seq: int = 0,
        limit: int,
    ) -> list[StoredRow]:
        """Replay range: observed_at >= since, seq >= from_seq, seq > after_seq; ascending."""
        return await reading.read_since(
            self._reader, since=since, from_seq=from_seq, after_seq=after_seq, limit=limit
        )

    async def read_seqs(self, seqs: Sequence[int]) -> list[StoredRow]:
        """The rows among `seqs` still stored, ascending (for dead-letter replay)."""
        return await reading.read_seqs(self._reader, seqs)

    async def cursor(self, receiver: str) -> int:
        """Acked seq of `receiver`; 0 when never seen, so it gets the whole retained spool."""
        return await reading.cursor(self._reader, receiver)

    async def ack(
        self, receiver: str, acked_seq: int, *, dead: Sequence[tuple[int, str]] = ()
    ) -> None:
        """Set the cursor and upsert dead letters (seq, error) in one transaction."""
        # Without dead letters it is one statement, atomic without BEGIN/COMMIT round trips
        # (sink workers ack every batch, and appends wait for the lock meanwhile).
        work = writing.save_ack(self._writer, receiver, acked_seq, dead, now=self._clock())
        await asyncio.shield(self._locked(work, explicit=bool(dead)))

    async def record_dead_letters(self, receiver: str, dead: Sequence[tuple[int, str]]) -> None:
        """Upsert dead letters without moving the cursor (replay must not touch it)."""
        await self._write(writing.save_dead, receiver, dead, now=self._clock())

    async def dead_letters(self, receiver: str | None = None) -> list[reading.DeadLetter]:
        """(receiver, seq, error, attempts, first_failed_at, last_failed_at) rows."""
        return await reading.dead_letters(self._reader, receiver)

    async def resolve_dead_letters(self, receiver: str, seqs: Sequence[int]) -> None:
        """Remove dead letters (replayed or given up on); retention may then take the rows."""
        await self._write(writing.delete_dead_letters, receiver, seqs)

    # -- housekeeping ---------------------------------------------------------------------

    async def retention(self, receivers: Collection[str], *, now: float | None = None) -> int:
        """Delete rows every receiver in `receivers` acked that are older than the window.

        Cursors of receivers not in the set are ignored. Rows with a dead letter stay. Deletes
        in chunks, one transaction each, so appends interleave. Returns rows deleted.
        """
        cursors = await reading.all_cursors(self._reader)
        bound = min((cursors.get(r, 0) for r in receivers), default=None)
        if bound is None:
            bound = await reading.head_seq(self._reader)
        cutoff = (self._clock() if now is None else now) - self._history_window
        total = 0
        while True:
            n = await self._write(
                writing.delete_retained, max_seq=bound, older_than=cutoff, limit=RETENTION_CHUNK
            )
            total += n
            self.rows -= n
            if n < RETENTION_CHUNK:
                await self._write(gaps.delete_older, cutoff)
                return total

    async def stats(self, receivers: Collection[str] = ()) -> dict[str, object]:
        """Counts, bytes (database, WAL and WAL index), time span and per-receiver lag
        (receivers=(): every cursor stored)."""
        collected = await stats.collect(
            self._reader, receivers, max_bytes=self._max_bytes, now=self._clock()
        )
        collected["bytes"] = disk.on_disk(self._path)  # what counts against maxBytes
        return collected

    async def _write(
        self,
        fn: Callable[Concatenate[aiosqlite.Connection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn(writer, ...)` as one locked transaction that cancellation cannot cut short."""
        return await asyncio.shield(self._locked(fn(self._writer, *args, **kwargs)))

    async def _locked(self, work: Awaitable[T], *, explicit: bool = True) -> T:
        """`work` under the write lock, in a transaction (`explicit=False`: `work` is a single
        statement, atomic on its own; see `writing.transaction`)."""
        async with self._lock:
            try:
                async with writing.transaction(self._writer, explicit=explicit):
                    result = await work
            except sqlite3.OperationalError as exc:
                if writing.is_full(exc):
                    await self._room.spend_reserve()  # the caller's retry then has room
                raise
            await self._room.bound_wal()
            return result


# The scans at open (the row count, the warm-up) read each page once: a page cache beyond a
# few pages buys them nothing.
SCAN_CACHE_KIB = 256


async def _scan_at_open(writer: aiosqlite.Connection, book: OccurrenceBook, *, cache_kib: int
                        ) -> tuple[int, float]:
    """Count the rows and warm the occurrence book from the newest `book.max_uids` rows of the
    two hours before the newest stored observation (eventpipe.spool.counting); returns (rows,
    newest observed_at or 0.0).

    Both scans walk many pages (the warm-up two hours of ~1 kB rows, a busy cluster's can be
    100k+; the count the smallest index): through a small page cache and in chunks, so that
    the start-up peak, which counts in the steady figure of docs/performance.md, stays low.
    Appends then get their cache back, empty: they need only the right edge of the trees."""
    await writer.execute(f"PRAGMA cache_size = -{min(SCAN_CACHE_KIB, cache_kib)}")
    try:
        count = await reading.scalar_int(writer, "SELECT COUNT(*) FROM events") or 0
        newest = await reading.scalar(writer, "SELECT MAX(observed_at) FROM events")
        if not isinstance(newest, int | float):
            return count, 0.0
        head = await reading.scalar_int(writer, "SELECT MAX(seq) FROM events") or 0
        async with writer.execute(
            # `+observed_at`: walk the seq range, not the whole window's index.
            "SELECT uid, occurrences FROM events WHERE seq > ? AND +observed_at >= ? "
            "ORDER BY seq",
            (head - book.max_uids, float(newest) - WARM_WINDOW_SECONDS),
        ) as cursor:
            while rows := await cursor.fetchmany(WARM_CHUNK_ROWS):
                book.warm((str(uid), int(occurrences)) for uid, occurrences in rows)
        book.warmed()
        return count, float(newest)
    finally:
        await writer.execute(f"PRAGMA cache_size = -{cache_kib}")
        await writer.execute("PRAGMA shrink_memory")
