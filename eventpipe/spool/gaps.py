"""Loss accounting: the `gaps` table, one row per stretch of a stream eventpipe did not watch.

A gap opens when a stream's resume point is refused with 410 Gone (eventpipe was down longer
than the API server keeps watch history, or the watch fell that far behind) and closes when
the relist that follows is stored. What eventpipe knows it may have missed:

- the resourceVersions after `from_resource_version` (the refused resume point) up to
  `to_resource_version` (the relist's): no watch saw them, so an Event created and expired
  inside that range, or an intermediate version of one, is known only as a range;
- `occurrences_missed`: for each version the relist stored, `count_delta - 1` when its count
  jumped by more than one since the stored version (an Event first seen in the relist counts
  from zero). Each is an occurrence whose own version was never seen. It is an upper bound:
  an Event whose earlier versions left the occurrence book's two-hour window counts in full.

The rows the relist stored are those with `after_seq < seq <= until_seq` in the gap's
namespace (streams of one process watch disjoint namespaces), which is also where
`eventpipe events --versions` shows the gap. The row is declared like the `events` row
(eventpipe.spool.rows): the NamedTuple's annotations are the table's columns.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Final, NamedTuple

import aiosqlite

from eventpipe.spool.rows import Column, Source, create_table_sql


class Gap(NamedTuple):
    """One recorded gap, fields in table order."""

    id: Annotated[int, Column("INTEGER PRIMARY KEY AUTOINCREMENT", Source.KEY)]
    observed_at: Annotated[float, Column("REAL NOT NULL")]
    """When the relist that closed it was stored (epoch seconds)."""
    stream: Annotated[str, Column("TEXT NOT NULL")]
    namespace: Annotated[str, Column("TEXT NOT NULL")]
    """The stream's namespace; "" for all namespaces."""
    from_resource_version: Annotated[str, Column("TEXT NOT NULL")]
    """The resume point the API server refused (the last one eventpipe had)."""
    to_resource_version: Annotated[str, Column("TEXT NOT NULL")]
    """The relist's resourceVersion, where watching resumed."""
    after_seq: Annotated[int, Column("INTEGER NOT NULL")]
    """The spool's head seq before the relist: versions up to it came before the gap."""
    until_seq: Annotated[int, Column("INTEGER NOT NULL")]
    """The head seq once the relist was stored."""
    relisted_versions: Annotated[int, Column("INTEGER NOT NULL")]
    """Versions the relist stored that the spool did not have."""
    occurrences_missed: Annotated[int, Column("INTEGER NOT NULL")]
    """Occurrences counted by the API server whose versions were never seen (module doc)."""


CREATE_TABLE: Final = create_table_sql("gaps", Gap)
_COLUMNS: Final = ", ".join(Gap._fields)
_INSERTED: Final = Gap._fields[1:]


async def record_gap(conn: aiosqlite.Connection, *, stream: str, namespace: str,
                     from_rv: str, to_rv: str, after_seq: int, now: float) -> Gap:
    """Insert the gap that the relist stored after `after_seq` closes; inside a transaction."""
    in_namespace = "(? = '' OR namespace = ?)"
    head = list(await conn.execute_fetchall("SELECT COALESCE(MAX(seq), 0) FROM events"))
    until_seq = max(after_seq, int(head[0][0]))
    counted = list(await conn.execute_fetchall(
        f"SELECT COUNT(*), COALESCE(SUM(MAX(count_delta - 1, 0)), 0) FROM events "
        f"WHERE seq > ? AND seq <= ? AND {in_namespace}",
        (after_seq, until_seq, namespace, namespace)))
    relisted, missed = int(counted[0][0]), int(counted[0][1])
    values = (now, stream, namespace, from_rv, to_rv, after_seq, until_seq, relisted, missed)
    cursor = await conn.execute(
        f"INSERT INTO gaps ({', '.join(_INSERTED)}) VALUES ({', '.join('?' * len(_INSERTED))})",
        values)
    return Gap(int(cursor.lastrowid or 0), *values)


async def read_gaps(conn: aiosqlite.Connection, *, low_seq: int = 0,
                    high_seq: int | None = None, limit: int | None = None) -> list[Gap]:
    """Gaps whose relist range touches seq `low_seq`..`high_seq`, newest `limit` of them,
    oldest first. A spool from before the gaps table (opened read-only, not yet migrated)
    has none."""
    sql = f"SELECT {_COLUMNS} FROM gaps WHERE until_seq >= ?"
    params: list[object] = [low_seq]
    if high_seq is not None:
        sql += " AND after_seq < ?"
        params.append(high_seq)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    try:
        found = await conn.execute_fetchall(sql, params)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [Gap(*row) for row in reversed(list(found))]


async def totals(conn: aiosqlite.Connection) -> tuple[int, int]:
    """(gaps recorded, occurrences missed) over the whole spool."""
    rows = list(await conn.execute_fetchall(
        "SELECT COUNT(*), COALESCE(SUM(occurrences_missed), 0) FROM gaps"))
    return int(rows[0][0]), int(rows[0][1])


def describe(gap: Gap) -> str:
    """One line for people: which resourceVersions were not watched, what the count says."""
    return (f"gap in {gap.stream}: resourceVersions {gap.from_resource_version}.."
            f"{gap.to_resource_version} not watched (relisted: {gap.relisted_versions} "
            f"versions, {gap.occurrences_missed} occurrences missed by count)")


async def delete_older(conn: aiosqlite.Connection, older_than: float) -> int:
    """Retention: drop gaps recorded before `older_than` (the history window's bound)."""
    cursor = await conn.execute("DELETE FROM gaps WHERE observed_at < ?", (older_than,))
    return max(cursor.rowcount, 0)
