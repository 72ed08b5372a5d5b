"""What the spool does when its disk or its byte budget (`spool.maxBytes`) is full.

The spool calls `before_append` before each append, `after_full` when an append failed with
SQLITE_FULL, `bound_wal` after each commit and `spend_reserve` when another write failed with
it; all under the spool's write lock, on its write connection.

- The disk reserve (eventpipe.spool.reserve) is released at the first disk-full error, so acks,
  retention and checkpoints still commit; under `block` appends then wait until the disk has
  room to take it back (`_retake_reserve`); under `dropOldest` the database is held to its
  pages and the oldest events are dropped to make room in them (`_hold_on_full_disk`); the
  reserve is taken back once the disk has room.
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

DROP_CHUNK_MIN = 256
DELETE_SLACK_PAGES = 16
"""Pages a delete may add while the database is held at its pages on a full disk."""
DELETE_MIN_ROWS = DROP_CHUNK_MIN // 8
"""Fewest rows a delete that does not fit in the WAL's room is cut to before it gives up."""
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
        self._page_limit: int | None = None
        """The database's own max_page_count while it is held at its pages (a full disk)."""
        self._reserve.take()

    async def before_append(self, records: Sequence[NewRecord]) -> None:
        """After a disk-full episode: the room `records` need, or SpoolFullError."""
        if not self._reserve_spent:
            return
        if self._when_full == "block":
            await self._retake_reserve(records)
        else:
            await self._hold_on_full_disk(records)

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
        try:
            await self._writer.execute_fetchall(f"PRAGMA wal_checkpoint({mode})")
        except sqlite3.OperationalError as exc:
            if not writing.is_full(exc):
                raise
            if self._reserve_spent:
                return False
            await self.spend_reserve()
            if not self._reserve_spent:
                return False  # the byte budget, not the disk: nothing to release
            return await self._checkpoint(mode)  # once more, in the reserve's room
        return True

    async def _make_room(self, wanted: int, exc: Exception, reason: str) -> None:
        if self._when_full == "block":
            raise SpoolFullError(reason) from exc
        await self.bound_wal()  # the delete, too, needs room in the WAL
        await self._drop_oldest(max(wanted, DROP_CHUNK_MIN), reason, exc)

    async def _drop_oldest(self, count: int, reason: str, exc: Exception | None = None
                           ) -> None:
        """`dropOldest`: delete the `count` oldest events in one commit (under the lock)."""
        held = self._page_limit is not None
        if held:  # rebalancing the b-tree takes new pages before it frees the old ones
            await self._set_max_pages(await self._pages() + DELETE_SLACK_PAGES)
        try:
            dropped = await self._delete_oldest(count, reason)
        finally:
            if held:
                await self._set_max_pages(await self._pages())
        if dropped == 0:
            raise SpoolFullError("the batch alone exceeds the spool byte budget",
                                 batch_too_large=True) from exc
        await self.bound_wal()
        self._on_drop(dropped, "budget")

    async def _delete_oldest(self, count: int, reason: str) -> int:
        """Delete up to `count` oldest events in one commit; fewer when their frames do not
        fit in the WAL's room (after a checkpoint); the number deleted."""
        while True:
            try:
                async with writing.transaction(self._writer):
                    return await writing.delete_oldest(self._writer, count)
            except sqlite3.OperationalError as exc:
                if not writing.is_full(exc):
                    raise
                if count <= DELETE_MIN_ROWS:
                    raise SpoolFullError(f"{reason}, and deleting the oldest events needs "
                                         "room too") from exc
            count //= 2
            await self._checkpoint("RESTART")

    async def _hold_on_full_disk(self, records: Sequence[NewRecord]) -> None:
        """Under `dropOldest` after a disk-full episode, before an append: take the reserve
        back once the disk has room again, else hold the database to the pages it has.

        A commit's frames go into the WAL; its new pages need room in the database file only
        at the checkpoint. If the database grew on the full disk, the WAL's own growth (a
        reader can keep it from starting over) could take that room first: the checkpoint
        would fail, the WAL could never start over, and every later write (acks too) would
        fail with it. So until the reserve is back the database may not grow at all
        (`max_page_count` = its pages now): an append reuses the pages dropped events leave,
        and when there are none it fails with SQLITE_FULL before its commit, like an append
        at the byte budget (`after_full` drops the oldest and retries). Only the WAL takes
        disk then, within the room the released reserve left."""
        await self._checkpoint("RESTART")
        needed = append_room(sum(len(r.body) for r in records), len(records))
        if self._reserve.take(needed):
            self._reserve_spent = False
            await self._hold_pages(False)
            return
        await self._hold_pages(True)
        if needed // 2 > self._reserve.size // 4 and len(records) > 1:
            # Its frames, and those of the delete that makes room for it, must fit in the
            # WAL within the reserve's room: the writer retries in halves.
            raise SpoolFullError(f"{await self._full_reason()}; the append is cut smaller",
                                 retry_smaller=True)

    async def _hold_pages(self, hold: bool) -> None:
        """Cap the database at its pages now (`hold`), or give it its own limit back."""
        if hold == (self._page_limit is not None):
            return
        if self._page_limit is None:
            self._page_limit = await reading.scalar_int(self._writer, "PRAGMA max_page_count")
            await self._set_max_pages(await self._pages())
        else:
            await self._set_max_pages(self._page_limit)
            self._page_limit = None

    async def _pages(self) -> int:
        return await reading.scalar_int(self._writer, "PRAGMA page_count") or 1

    async def _set_max_pages(self, pages: int) -> None:
        """max_page_count (SQLite keeps it at least the pages the database has); the pragma
        returns a row, which is read so the statement ends."""
        await self._writer.execute_fetchall(f"PRAGMA max_page_count = {pages}")

    async def _budget_reached(self) -> bool:
        if self._max_bytes is None:
            return False
        pages = await self._pages()
        limit = self._page_limit or await reading.scalar_int(
            self._writer, "PRAGMA max_page_count") or 0
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
        if self._reserve_spent or await self._budget_reached():
            return
        # Not held when the disk was already too full to allocate it at open: the episode
        # starts all the same.
        self._reserve.release()
        self._reserve_spent = True
        if self._when_full != "block":  # from now on only the WAL may take disk
            await self._hold_pages(True)

    async def _full_reason(self) -> str:
        """Which limit SQLITE_FULL hit: the page budget, or the disk under the file."""
        if await self._budget_reached():
            return f"spool byte budget of {self._max_bytes} bytes reached"
        free = disk.free_bytes(self._path)
        return f"the disk holding {self._path} is full ({free} bytes free)"
