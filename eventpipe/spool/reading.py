"""Read-side queries: what sink workers, replay and the CLI ask the spool.

They run on the read connection, so WAL lets them proceed while the watcher's writer commits.
Each function is one statement (autocommit), so it sees everything committed before it ran.
Event rows come back as `StoredRow`s (eventpipe.spool.rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import aiosqlite

from eventpipe.spool.rows import SELECT_COLUMNS, StoredRow, stored_rows

# SQLite allows 32766 bound parameters; stay far below it and keep statement-cache hits.
IN_CHUNK = 500


def chunks(items: Sequence[int] | Sequence[str], size: int = IN_CHUNK) -> Iterable[list[object]]:
    """Split `items` into lists of at most `size` for `IN (...)` lookups."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def placeholders(n: int) -> str:
    """`?,?,...,?` for n parameters."""
    return ",".join("?" * n)


async def scalar(conn: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> object:
    """First column of the first row, or None when there is no row."""
    rows = list(await conn.execute_fetchall(sql, params))
    return rows[0][0] if rows else None


async def scalar_int(
    conn: aiosqlite.Connection, sql: str, params: Sequence[object] = ()
) -> int | None:
    """`scalar` for integer results (None stays None)."""
    found = await scalar(conn, sql, params)
    return None if found is None else int(cast(int, found))


async def head_seq(conn: aiosqlite.Connection) -> int:
    """Highest seq stored, 0 if the spool is empty."""
    return await scalar_int(conn, "SELECT MAX(seq) FROM events") or 0


async def read_after(conn: aiosqlite.Connection, after_seq: int, limit: int) -> list[StoredRow]:
    """Up to `limit` rows with seq > after_seq, ascending."""
    rows = await conn.execute_fetchall(
        f"SELECT {SELECT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    return stored_rows(rows)


async def first_seq_since(conn: aiosqlite.Connection, since: float) -> int | None:
    """Smallest seq observed at or after `since` (observed_at grows with seq), or None."""
    found = await scalar(
        conn,
        "SELECT seq FROM events WHERE observed_at >= ? ORDER BY observed_at, seq LIMIT 1",
        (since,),
    )
    return int(cast(int, found)) if found is not None else None


async def read_since(
    conn: aiosqlite.Connection,
    *,
    since: float | None,
    from_seq: int | None,
    after_seq: int,
    limit: int,
) -> list[StoredRow]:
    """Rows for replay: observed at/after `since`, seq >= from_seq and > after_seq, ascending.

    The time bound becomes a seq bound through the observed_at index, so paging with
    `after_seq` is a plain rowid range scan.
    """
    low = after_seq
    if from_seq is not None:
        low = max(low, from_seq - 1)
    if since is None:
        return await read_after(conn, low, limit)
    start = await first_seq_since(conn, since)
    if start is None:
        return []
    low = max(low, start - 1)
    rows = await conn.execute_fetchall(
        f"SELECT {SELECT_COLUMNS} FROM events WHERE seq > ? AND observed_at >= ? "
        "ORDER BY seq LIMIT ?",
        (low, since, limit),
    )
    return stored_rows(rows)


async def read_seqs(conn: aiosqlite.Connection, seqs: Sequence[int]) -> list[StoredRow]:
    """The stored rows among `seqs`, ascending; seqs no longer stored are skipped."""
    out: list[StoredRow] = []
    for part in chunks(sorted(set(seqs))):
        rows = await conn.execute_fetchall(
            f"SELECT {SELECT_COLUMNS} FROM events WHERE seq IN ({placeholders(len(part))}) "
            "ORDER BY seq",
            part,
        )
        out.extend(stored_rows(rows))
    return out


async def resume_point(conn: aiosqlite.Connection, stream: str) -> str | None:
    """The resourceVersion saved with the last committed batch of `stream`."""
    found = await scalar(
        conn, "SELECT resource_version FROM watch_state WHERE stream = ?", (stream,)
    )
    return None if found is None else str(found)


async def cursor(conn: aiosqlite.Connection, receiver: str) -> int:
    """Acked seq of `receiver`; 0 for a receiver never seen (it gets the whole spool)."""
    found = await scalar(conn, "SELECT acked_seq FROM cursors WHERE receiver = ?", (receiver,))
    return 0 if found is None else int(cast(int, found))


async def all_cursors(conn: aiosqlite.Connection) -> dict[str, int]:
    """Every stored cursor."""
    rows = await conn.execute_fetchall("SELECT receiver, acked_seq FROM cursors")
    return {str(r[0]): int(r[1]) for r in rows}


DeadLetter = tuple[str, int, str, int, float, float]


async def dead_letters(conn: aiosqlite.Connection, receiver: str | None) -> list[DeadLetter]:
    """(receiver, seq, error, attempts, first_failed_at, last_failed_at), by receiver, seq."""
    sql = "SELECT receiver, seq, error, attempts, first_failed_at, last_failed_at FROM dead_letters"
    if receiver is None:
        rows = await conn.execute_fetchall(sql + " ORDER BY receiver, seq")
    else:
        rows = await conn.execute_fetchall(sql + " WHERE receiver = ? ORDER BY seq", (receiver,))
    return cast(list[DeadLetter], list(rows))
