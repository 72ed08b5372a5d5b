"""What the spool may take on disk, and how that is enforced.

The spool is three files: the database (`spool.db`), its write-ahead log (`spool.db-wal`) and
the WAL's shared-memory index (`spool.db-shm`). `spool.maxBytes` bounds all three together:

- the WAL gets a share of the budget: 1/16 of it, at least 1 MiB (a quarter of budgets under
  4 MiB) and at most 64 MiB;
- a checkpoint runs once the WAL holds an eighth of its share (`wal_autocheckpoint`); a reader
  in the middle of a read can keep the WAL from starting over, so after any commit that left
  the file larger than half its share a RESTART checkpoint makes the next commit write the
  WAL from its start again, and SQLite then truncates the file to half its share
  (`journal_size_limit`);
- one append carries at most a quarter of the WAL's share of event bytes (the group-commit
  writer cuts its groups to that size), so the WAL grows past half its share by less than
  one append;
- the shared-memory index is 32 KiB per 4,096 WAL frames: 32 KiB covers any WAL within its
  share (at most 64 MiB, under 4,096 frames of 16 KiB);
- the database gets the rest, as `max_page_count`.

So the three files together stay within `maxBytes`; the WAL share is space the database
cannot fill, which is what lets acks, retention and `dropOldest` deletes commit while the
database is at its budget. Without `maxBytes` the WAL is checkpointed every 128 pages (2 MiB,
half the disk reserve of eventpipe.spool.reserve, so a checkpoint on a full disk fits in it)
and truncated to 64 MiB after a checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

MIB = 1024 * 1024
WAL_SHARE_DIVISOR = 16
WAL_SHARE_MIN = 1 * MIB
WAL_SHARE_MAX = 64 * MIB
SHM_ALLOWANCE = 32 * 1024
DEFAULT_CHECKPOINT_PAGES = 128
START_MIN_FREE = 1 * MIB
"""Free bytes the disk must have for the spool to open: less, and nothing could be stored."""


@dataclass(frozen=True, slots=True)
class DiskPlan:
    """The SQLite settings that keep the spool's files within its budget."""

    db_pages: int | None
    """max_page_count of the database (None: no budget)."""
    wal_bytes: int
    """The WAL's share of the budget."""
    restart_above: int
    """WAL file size past which a commit is followed by a RESTART checkpoint; also the
    journal_size_limit the WAL is truncated to when it starts over."""
    checkpoint_pages: int
    """wal_autocheckpoint."""
    largest_append: int | None
    """Most event bytes one append may carry (None: no budget)."""


def plan(max_bytes: int | None, page_size: int) -> DiskPlan:
    """Split `max_bytes` between the database, the WAL and its index (module docstring)."""
    if max_bytes is None:
        return DiskPlan(db_pages=None, wal_bytes=WAL_SHARE_MAX, restart_above=WAL_SHARE_MAX,
                        checkpoint_pages=DEFAULT_CHECKPOINT_PAGES, largest_append=None)
    floor = min(WAL_SHARE_MIN, max_bytes // 4)  # a tiny budget: a quarter of it
    wal = min(WAL_SHARE_MAX, max(floor, max_bytes // WAL_SHARE_DIVISOR))
    db_pages = max(1, (max_bytes - wal - SHM_ALLOWANCE) // page_size)
    return DiskPlan(db_pages=db_pages, wal_bytes=wal, restart_above=wal // 2,
                    checkpoint_pages=max(1, wal // page_size // 8), largest_append=wal // 4)


def wal_path(path: Path) -> Path:
    """The WAL file of the database at `path`."""
    return path.with_name(path.name + "-wal")


def file_size(path: Path) -> int:
    """Bytes of `path` (0 when it is not there)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def on_disk(path: Path) -> int:
    """Bytes the spool at `path` takes now: database, WAL and shared-memory index."""
    return sum(file_size(path.with_name(path.name + suffix)) for suffix in ("", "-wal", "-shm"))


def volume_bytes(path: Path) -> int:
    """Size of the filesystem holding `path` (0 when it cannot be read)."""
    stat = _filesystem(path)
    return stat.f_blocks * stat.f_frsize if stat is not None else 0


def free_bytes(path: Path) -> int:
    """Bytes still free for this process on the filesystem holding `path`."""
    stat = _filesystem(path)
    return stat.f_bavail * stat.f_frsize if stat is not None else 0


def _filesystem(path: Path) -> os.statvfs_result | None:
    try:
        return os.statvfs(path.parent)
    except OSError:
        return None


async def apply(conn: aiosqlite.Connection, disk_plan: DiskPlan) -> None:
    """Set the plan's limits on the write connection."""
    if disk_plan.db_pages is not None:
        await conn.execute(f"PRAGMA max_page_count = {disk_plan.db_pages}")
    await conn.execute(f"PRAGMA journal_size_limit = {disk_plan.restart_above}")
    await conn.execute(f"PRAGMA wal_autocheckpoint = {disk_plan.checkpoint_pages}")


def start_problem(path: Path) -> str:
    """Why `eventpipe run` cannot start on the disk holding `path` ("" when it can)."""
    free = free_bytes(path)
    if path.parent.is_dir() and free < START_MIN_FREE:
        return (f"the disk holding it is full ({free} bytes free, at least {START_MIN_FREE} "
                "needed to start): free some space, or move spool.path")
    return ""
