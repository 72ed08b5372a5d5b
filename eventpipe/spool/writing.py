"""Write-side transactions of the spool; all run on the single write connection.

`Spool` serialises them with one asyncio lock (statements of two coroutines must never
interleave inside one SQLite transaction) and shields them from cancellation, so a commit
that happened is always followed by the in-memory bookkeeping that goes with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

import aiosqlite

from eventpipe.spool import rows
from eventpipe.spool.counting import OccurrenceBook
from eventpipe.spool.reading import chunks, placeholders
from eventpipe.spool.rows import NewRecord

# An append is one INSERT into the `append_batch` view (eventpipe.spool.schema): its trigger
# stores the events and the resume point, so on the watch path the whole commit is one
# statement — one trip to SQLite's thread and one step, atomic on its own in autocommit.
_APPEND = (
    "INSERT INTO append_batch "
    "(columns, bodies, texts_in_bodies, observed_at, stream, resource_version) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SAVE_CURSOR = (
    "INSERT INTO cursors (receiver, acked_seq) VALUES (?, ?) "
    "ON CONFLICT (receiver) DO UPDATE SET acked_seq = excluded.acked_seq"
)
_SAVE_DEAD = (
    "INSERT INTO dead_letters "
    "(receiver, seq, error, attempts, first_failed_at, last_failed_at) VALUES (?, ?, ?, 1, ?, ?) "
    "ON CONFLICT (receiver, seq) DO UPDATE SET error = excluded.error, "
    "attempts = attempts + 1, last_failed_at = excluded.last_failed_at"
)


def is_full(exc: BaseException) -> bool:
    """Whether `exc` is SQLITE_FULL: the page budget (max_page_count) or the disk is full."""
    return (
        isinstance(exc, sqlite3.OperationalError)
        and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    )


async def rollback_quietly(conn: aiosqlite.Connection) -> None:
    """Roll back if a transaction is open; SQLITE_FULL may already have rolled it back."""
    with suppress(sqlite3.OperationalError):
        await conn.execute("ROLLBACK")


@asynccontextmanager
async def transaction(conn: aiosqlite.Connection, *, explicit: bool = True
                      ) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (including a failed COMMIT).

    `explicit=False` is for work that is a single statement, atomic on its own: no BEGIN and
    COMMIT round trips (each waits for the event loop's next turn while a burst keeps it busy).
    """
    if not explicit:
        yield
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        await conn.execute("COMMIT")
    except BaseException:
        await rollback_quietly(conn)
        raise


async def insert_batch(
    conn: aiosqlite.Connection,
    records: Sequence[NewRecord],
    *,
    stream: str,
    resource_version: str | None,
    book: OccurrenceBook,
    observed_at: float,
    check_stored: bool = True,
) -> tuple[list[tuple[int, int]], dict[int, int]]:
    """Insert the records not stored yet and save the resume point.

    Returns (index, count_delta) of each inserted record and the bookkeeping updates to apply
    after commit. With `check_stored=False` the lookup of already-stored versions is skipped
    (the watch only ever shows new versions) and the work is one statement, which needs no
    transaction around it; a version that was stored after all makes the INSERT fail with
    IntegrityError (nothing stored), and the caller retries with the lookup, which must run
    inside a transaction.
    """
    # The watch path (check_stored False) costs one book lookup and one JSON element per
    # event: a version stored before, or twice in this batch, fails the UNIQUE index and the
    # caller retries with the lookup.
    indices = await _not_stored(conn, records) if check_stored else range(len(records))
    fresh = [records[i] for i in indices] if check_stored else records
    deltas, updates = book.deltas([(r.uid, r.occurrences) for r in fresh])
    columns, bodies, texts_in_bodies = rows.append_parameters(fresh, deltas)
    await conn.execute(_APPEND, (columns, bodies, texts_in_bodies, observed_at, stream,
                                 resource_version))
    return list(zip(indices, deltas, strict=True)), updates


async def _not_stored(conn: aiosqlite.Connection, records: Sequence[NewRecord]) -> list[int]:
    """Indices of the records whose (resourceVersion, uid) is neither stored nor earlier in
    `records`."""
    stored: set[tuple[str, str]] = set()
    for part in chunks(sorted({r.resource_version for r in records})):
        found = await conn.execute_fetchall(
            "SELECT resource_version, uid FROM events "
            f"WHERE resource_version IN ({placeholders(len(part))})",
            part,
        )
        stored.update((str(rv), str(uid)) for rv, uid in found)
    indices: list[int] = []
    for i, record in enumerate(records):
        key = (record.resource_version, record.uid)
        if key not in stored:
            stored.add(key)  # the same pair twice in one batch is stored once
            indices.append(i)
    return indices


async def save_ack(
    conn: aiosqlite.Connection,
    receiver: str,
    acked_seq: int,
    dead: Sequence[tuple[int, str]],
    *,
    now: float,
) -> None:
    """Move the cursor and record dead letters; call inside a transaction."""
    await conn.execute(_SAVE_CURSOR, (receiver, acked_seq))
    await save_dead(conn, receiver, dead, now=now)


async def save_dead(
    conn: aiosqlite.Connection, receiver: str, dead: Sequence[tuple[int, str]], *, now: float
) -> None:
    """Upsert dead letters: attempts + 1, first time kept, last time and error updated."""
    if dead:
        await conn.executemany(
            _SAVE_DEAD, [(receiver, seq, error, now, now) for seq, error in dead]
        )


async def delete_dead_letters(
    conn: aiosqlite.Connection, receiver: str, seqs: Sequence[int]
) -> None:
    """Drop resolved dead letters (their rows become eligible for retention)."""
    for part in chunks(list(seqs)):
        await conn.execute(
            f"DELETE FROM dead_letters WHERE receiver = ? AND seq IN ({placeholders(len(part))})",
            [receiver, *part],
        )


async def delete_oldest(conn: aiosqlite.Connection, n: int) -> int:
    """Delete the `n` oldest rows regardless of acks (budget policy dropOldest)."""
    cur = await conn.execute(
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (n,)
    )
    return max(cur.rowcount, 0)


async def delete_retained(
    conn: aiosqlite.Connection, *, max_seq: int, older_than: float, limit: int
) -> int:
    """Delete up to `limit` rows with seq <= max_seq observed before `older_than`.

    Rows any receiver holds a dead letter for stay until the dead letter is resolved.
    """
    cur = await conn.execute(
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? "
        "AND observed_at < ? AND seq NOT IN (SELECT seq FROM dead_letters) "
        "ORDER BY seq LIMIT ?)",
        (max_seq, older_than, limit),
    )
    return max(cur.rowcount, 0)
