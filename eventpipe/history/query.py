"""History queries over the spool: what `eventpipe events` asks, answered from indexes.

The spool keeps every version of every Event for the history window (default 7 d), far past
the API server's one-hour TTL. This module reads it the way `kubectl get events` reads the API:

- The file is opened read-only (`mode=ro` URI): a running eventpipe may be writing, WAL lets
  a reader proceed beside it, and a query can never create or change a spool.
- `since` is turned into a seq bound through the `observed_at` index (observed_at grows with
  seq), so every query is a rowid range scan, newest first, that stops as soon as it has
  `limit` answers. No index on name/namespace/reason: with 16 KiB pages and 500-row commits,
  an index whose keys arrive in random order dirties hundreds of pages per commit, which costs
  more insert throughput than the worst-case query (nothing matches, the whole table is read)
  is worth (both measured in docs/performance.md).
- Latest version only by default: scanning newest first, the first row seen for a uid is its
  latest version, so de-duplication is a set of uids, not a GROUP BY over the whole table.
  The filtered columns never change between versions of one Event, so "latest matching
  version" and "latest version" are the same row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from eventpipe.spool import reading
from eventpipe.spool.rows import SELECT_COLUMNS, StoredRow, stored_rows
from eventpipe.spool.schema import BUSY_TIMEOUT_MS

# `eventpipe events` is a process of its own, so its page cache is not the running pipeline's
# (whose reader's is `spool.readerCacheSize`); the size the history figures were measured with.
HISTORY_CACHE_KIB = 2_048
FETCH_ROWS = 500
"""Rows pulled from SQLite per round trip to its thread; a page of table output."""


class HistoryError(Exception):
    """The spool cannot be queried (missing, not a spool); the message says why."""


@dataclass(frozen=True)
class Filters:
    """What to select; None means "any". Kind and type match case-insensitively."""

    since: float | None = None
    """Only versions stored at or after this epoch time (observed_at)."""
    namespace: str | None = None
    kind: str | None = None
    """Canonical kind (`Pod`), see `eventpipe.history.kinds.canonical_kind`."""
    name: str | None = None
    reason: str | None = None
    type: str | None = None

    def where(self, low_seq: int) -> tuple[str, list[object]]:
        """SQL condition and parameters for rows with seq >= low_seq matching the filters."""
        clauses: list[str] = ["seq >= ?"]
        params: list[object] = [low_seq]
        for column, value, collate in (("namespace", self.namespace, ""),
                                       ("name", self.name, ""),
                                       ("kind", self.kind, " COLLATE NOCASE"),
                                       ("reason", self.reason, ""),
                                       ("type", self.type, " COLLATE NOCASE")):
            if value is not None:
                clauses.append(f"{column} = ?{collate}")
                params.append(value)
        return " AND ".join(clauses), params


def read_only_uri(path: str | Path) -> str:
    """`file:` URI opening `path` read-only; HistoryError if there is no such file.

    Checked first: SQLite would report a missing file only as "unable to open database".
    """
    file = Path(path)
    if not file.is_file():
        raise HistoryError(f"no spool at {path}")
    return f"{file.resolve().as_uri()}?mode=ro"


async def open_read_only(path: str | Path) -> aiosqlite.Connection:
    """Open the spool at `path` read-only; HistoryError if it is missing or not a spool."""
    conn = await aiosqlite.connect(read_only_uri(path), uri=True)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute(f"PRAGMA cache_size = -{HISTORY_CACHE_KIB}")
        # What a query sorts or collects (GROUP BY uid over millions of rows) spills to a
        # temporary file, not to this process's memory.
        await conn.execute("PRAGMA temp_store = FILE")
        await conn.execute("SELECT seq FROM events LIMIT 0")
    except aiosqlite.Error as exc:
        await conn.close()
        raise HistoryError(f"{path} is not an eventpipe spool: {exc}") from exc
    return conn


async def low_seq(conn: aiosqlite.Connection, since: float | None) -> int | None:
    """Smallest seq to consider (0 for all), None when nothing is recent enough."""
    if since is None:
        return 0
    return await reading.first_seq_since(conn, since)


async def latest(conn: aiosqlite.Connection, filters: Filters, *, limit: int | None,
                 versions: bool = False, max_seq: int | None = None) -> list[StoredRow]:
    """The `limit` most recent matching Events (None: all), oldest first (newest last).

    One row per uid (its latest version) unless `versions`, then every stored version.
    `max_seq` caps the scan (the watch starts after it, so no row is shown twice).
    """
    low = await low_seq(conn, filters.since)
    if low is None or limit == 0:
        return []
    where, params = filters.where(low)
    if max_seq is not None:
        where += " AND seq <= ?"
        params.append(max_seq)
    sql = f"SELECT {SELECT_COLUMNS} FROM events WHERE {where} ORDER BY seq DESC"
    out: list[StoredRow] = []
    seen: set[str] = set()
    async with conn.execute(sql, params) as cur:
        while (limit is None or len(out) < limit) and (batch := await cur.fetchmany(FETCH_ROWS)):
            for row in stored_rows(batch):
                if not versions:
                    if row.uid in seen:
                        continue
                    seen.add(row.uid)
                out.append(row)
                if limit is not None and len(out) >= limit:
                    break
    out.reverse()
    return out


async def follow(conn: aiosqlite.Connection, filters: Filters, *, after_seq: int,
                 emit: Callable[[list[StoredRow]], None], interval: float = 1.0,
                 iterations: int | None = None) -> int:
    """Poll for matching versions stored after `after_seq` and `emit` each batch, ascending.

    Every new version is shown (a MODIFIED is a change worth seeing, as with `kubectl -w`).
    Runs until cancelled, or for `iterations` polls (tests bound it). Returns the last seq seen.
    """
    done = 0
    while iterations is None or done < iterations:
        head = await reading.head_seq(conn)
        if head > after_seq:
            where, params = filters.where(after_seq + 1)
            if filters.since is not None:
                where += " AND observed_at >= ?"
                params.append(filters.since)
            sql = f"SELECT {SELECT_COLUMNS} FROM events WHERE {where} AND seq <= ? ORDER BY seq"
            rows = stored_rows(await conn.execute_fetchall(sql, [*params, head]))
            if rows:
                emit(rows)
            after_seq = head
        done += 1
        if iterations is None or done < iterations:
            await asyncio.sleep(interval)
    return after_seq
