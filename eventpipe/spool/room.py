"""What the spool does when its disk or its byte budget (`spool.maxBytes`) is full.

The spool calls `before_append` before each append, `after_full` when an append failed with
SQLITE_FULL, `bound_wal` after each commit and `spend_reserve` when another write failed with
it; all under the spool's write lock, on its write connection.

- The disk reserve (eventpipe.spool.reserve) is released at the first disk-full error, so acks,
  retention and checkpoints still commit; under `block` appends then wait until the disk has
  room to take it back (`_retake_reserve`), under `dropOldest` the oldest events are dropped to
  make the room (`_drop_for_disk_room`), and the reserve is taken back once there is room.
- At the byte budget, `block` raises SpoolFullError and `dropOldest` deletes the oldest events
  (`_make_room`), each drop reported through `on_drop`.
- The WAL is kept within its share (eventpipe.spool.disk) and, on a full disk, within a
  quarter of the reserve.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import aiosqlite

from eventpipe.spool import disk, reading, writing
from eventpipe.spool.errors import SpoolFullError
from eventpipe.spool.reserve import DiskReserve, append_room
from eventpipe.spool.rows import NewRecord
from eventpipe.spool.schema import page_size

DROP_CHUNK_MIN = 256
DISK_ROOM_ROUNDS = 64
"""Drops tried before one append on a full disk gives up for now (the writer retries)."""
# A transaction needs a few pages beyond the ones it fills (index splits, the freelist).
BUDGET_SLACK_PAGES = 8

OnDrop = Callable[[int, str], None]
"""Called with (events dropped, reason) after each drop is committed."""


class SpoolRoom:
    """The room one spool has on its disk and within its budget."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, *, disk_plan: disk.DiskPlan,
                 max_bytes: int | None, when_full: str, on_drop: OnDrop) -> None:
        self._path = path
        self._writer = writer
        self._disk = disk_plan
        self._wal = disk.wal_path(path)
        self._max_bytes = max_bytes
        self._when_full = when_full
        self._on_drop = on_drop
        self._reserve = DiskReserve(path, budget=max_bytes)
        self._reserve_spent = False
        self._reserve.take()

    async def before_append(self, records: Sequence[NewRecord]) -> None:
        """After a disk-full episode: the room `records` need, or SpoolFullError."""
        if not self._reserve_spent:
            return
        if self._when_full == "block":
            await self._retake_reserve(records)
        else:
            await self._drop_for_disk_room(records)

    async def after_full(self, records: Sequence[NewRecord], exc: Exception) -> None:
        """An append of `records` failed with SQLITE_FULL (`exc`): room made for a retry
        (`dropOldest`), or SpoolFullError."""
        if self._max_bytes and sum(len(r.body) for r in records) > self._max_bytes // 2:
            # Dropping others cannot make room for this: say so before dropping.
            raise SpoolFullError("the batch alone exceeds the spool byte budget",
                                 batch_too_large=True) from exc
        reason = await self._full_reason()  # before the reserve frees room
        await self.spend_reserve()
        await self._make_room(len(records), exc, reason)

    async def bound_wal(self) -> None:
        """After a commit (under the lock): a WAL past half its share of the budget starts
        over at the next commit, which reuses the file instead of growing it
        (eventpipe.spool.disk)."""
        limit = self._disk.restart_above if self._max_bytes is not None else None
        if self._reserve_spent:  # the disk is full: the WAL must stay within the reserve
            limit = min(limit or self._reserve.size, self._reserve.size // 4)
        if limit is not None and disk.file_size(self._wal) > limit:
            await self._checkpoint("RESTART")

    async def _checkpoint(self, mode: str) -> bool:
        """A WAL checkpoint; False when it failed for want of disk (its frames stay in the
        WAL, the next one tries again). Never raises SQLITE_FULL: after a commit that error
        would make the caller retry what is already stored. A checkpoint that finds the disk
        full starts the full-disk handling as a failed append does: the reserve is released
        (so this checkpoint is tried once more in its room) and the next append makes room
        first (`before_append`)."""
        for _ in range(2):
            try:
                await self._writer.execute(f"PRAGMA wal_checkpoint({mode})")
            except sqlite3.OperationalError as exc:
                if not writing.is_full(exc):
                    raise
                if self._reserve_spent:
                    return False
                await self.spend_reserve()
                if not self._reserve_spent:
                    return False  # the byte budget, not the disk: nothing to release
                continue
            return True
        return False

    async def _make_room(self, wanted: int, exc: Exception, reason: str) -> None:
        if self._when_full == "block":
            raise SpoolFullError(reason) from exc
        await self.bound_wal()  # the delete, too, needs room in the WAL
        await self._drop_oldest(max(wanted, DROP_CHUNK_MIN), reason, exc)

    async def _drop_oldest(self, count: int, reason: str, exc: Exception | None = None
                           ) -> None:
        """`dropOldest`: delete the `count` oldest events in one commit (under the lock)."""
        try:
            async with writing.transaction(self._writer):
                dropped = await writing.delete_oldest(self._writer, count)
        except sqlite3.OperationalError as delete_exc:
            if not writing.is_full(delete_exc):
                raise
            raise SpoolFullError(f"{reason}, and deleting the oldest events needs room too"
                                 ) from delete_exc
        if dropped == 0:
            raise SpoolFullError("the batch alone exceeds the spool byte budget",
                                 batch_too_large=True) from exc
        await self.bound_wal()
        self._on_drop(dropped, "budget")

    async def _drop_for_disk_room(self, records: Sequence[NewRecord]) -> None:
        """Under `dropOldest` after a disk-full episode, before an append: take the reserve
        back once the disk has room again, else drop the oldest events until the disk's free
        bytes and the database's free pages hold the append.

        A commit's frames go into the WAL, whose file has room to reuse, so on a full disk the
        INSERT itself succeeds; its new pages need room in the database file only at the
        checkpoint. Without that room the checkpoint fails, the WAL can no longer start over,
        and every later write (acks too) fails with it: so the room is made before the
        append, not after its checkpoint failed."""
        body_bytes = sum(len(r.body) for r in records)
        needed = append_room(body_bytes, len(records))
        per_row = max(1, needed // max(1, len(records)) // 2)
        reason = await self._full_reason()
        if needed > self._reserve.size and len(records) > 1:
            # More than the reserve gives back: the writer retries in halves, each of which
            # the room dropped events leave can hold.
            raise SpoolFullError(f"{reason}; the append is cut smaller", retry_smaller=True)
        # Each delete's frames must fit in the WAL on the full disk: at most a quarter of
        # the reserve of rows at a time, checkpointed between deletes.
        chunk = max(DROP_CHUNK_MIN, self._reserve.size // 4 // per_row)
        for _ in range(DISK_ROOM_ROUNDS):
            if not await self._checkpoint("RESTART"):
                raise SpoolFullError(f"{reason}; the WAL cannot be checkpointed")
            if self._reserve.take(needed):
                self._reserve_spent = False
                return
            free_pages = await reading.scalar_int(self._writer, "PRAGMA freelist_count") or 0
            room = disk.free_bytes(self._path) + free_pages * await page_size(self._writer)
            if room >= needed:
                return
            await self._drop_oldest(min(chunk, max(DROP_CHUNK_MIN,
                                                   (needed - room) // per_row + 1)), reason)
        raise SpoolFullError(f"{reason}; dropping the oldest events did not make room")

    async def _budget_reached(self) -> bool:
        if self._max_bytes is None:
            return False
        pages = await reading.scalar_int(self._writer, "PRAGMA page_count") or 0
        limit = await reading.scalar_int(self._writer, "PRAGMA max_page_count") or 0
        return pages >= limit - BUDGET_SLACK_PAGES

    async def _retake_reserve(self, records: Sequence[NewRecord]) -> None:
        """Under `block` after a disk-full episode: allocate the reserve again when the disk
        has room for it and for `records` (eventpipe.spool.reserve), else SpoolFullError.

        The WAL's frames go into the database file at the next checkpoint, so they need room
        there too: the WAL is checkpointed and truncated first (which also gives its file's
        room back), and what it still holds counts towards the room the append needs."""
        await self._checkpoint("TRUNCATE")
        pending = disk.file_size(self._wal)
        room = pending + append_room(sum(len(r.body) for r in records), len(records))
        if self._reserve.take(room):
            self._reserve_spent = False
            return
        wanted = self._reserve.wanted(room)
        smaller = len(records) > 1 and self._reserve.available() >= self._reserve.wanted(
            pending + append_room(min(len(r.body) for r in records), 1))
        raise SpoolFullError(f"{await self._full_reason()}; appends wait until {wanted} bytes "
                             "are free", retry_smaller=smaller)

    async def spend_reserve(self) -> None:
        """SQLITE_FULL from the disk (not the budget): release the reserve
        (eventpipe.spool.reserve) so acks, deletes and checkpoints can still commit."""
        if not await self._budget_reached() and self._reserve.release():
            self._reserve_spent = True

    async def _full_reason(self) -> str:
        """Which limit SQLITE_FULL hit: the page budget, or the disk under the file."""
        if await self._budget_reached():
            return f"spool byte budget of {self._max_bytes} bytes reached"
        free = disk.free_bytes(self._path)
        return f"the disk holding {self._path} is full ({free} bytes free)"
