"""Spool statistics for metrics, `/readyz` and `eventpipe spool stats`.

Mostly index lookups; the one full scan is the oldest/newest `event_time` (no index on it, to
keep inserts fast), so call this every few seconds, not per event.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

import aiosqlite

from eventpipe.spool.gaps import read_gaps, totals
from eventpipe.spool.reading import all_cursors, scalar, scalar_int

RECENT_GAPS = 5
"""Gaps listed in the stats (the newest); the totals count all."""


async def _page_bytes(conn: aiosqlite.Connection) -> tuple[int, int]:
    size = await scalar_int(conn, "PRAGMA page_size") or 0
    pages = await scalar_int(conn, "PRAGMA page_count") or 0
    free = await scalar_int(conn, "PRAGMA freelist_count") or 0
    return pages * size, free * size


async def collect(
    conn: aiosqlite.Connection,
    receivers: Collection[str],
    *,
    max_bytes: int | None,
    now: float,
) -> dict[str, object]:
    """Counts, sizes, time span, and per-receiver lag; receivers=() means every cursor stored."""
    used, free = await _page_bytes(conn)
    rows = list(
        await conn.execute_fetchall(
            "SELECT COUNT(*), MIN(seq), MAX(seq), MIN(observed_at), MAX(observed_at), "
            "MIN(event_time), MAX(event_time) FROM events"
        )
    )
    count, _first, head, oldest_obs, newest_obs, oldest_evt, newest_evt = rows[0]
    cursors = await all_cursors(conn)
    names = sorted(receivers) if receivers else sorted(cursors)
    dead_rows = await conn.execute_fetchall(
        "SELECT receiver, COUNT(*) FROM dead_letters GROUP BY receiver"
    )
    dead = {str(r): int(n) for r, n in dead_rows}
    per_receiver: dict[str, dict[str, object]] = {}
    for name in names:
        acked = cursors.get(name, 0)
        lag_rows = list(
            await conn.execute_fetchall(
                "SELECT COUNT(*), MIN(seq) FROM events WHERE seq > ?", (acked,)
            )
        )
        lag_events, oldest_unacked = lag_rows[0]
        lag_seconds = 0.0
        if oldest_unacked is not None:
            observed = await scalar(
                conn, "SELECT observed_at FROM events WHERE seq = ?", (oldest_unacked,)
            )
            lag_seconds = max(0.0, now - float(cast(float, observed)))
        per_receiver[name] = {
            "acked_seq": acked,
            "lag_events": int(lag_events),
            "lag_seconds": lag_seconds,
            "dead_letters": dead.get(name, 0),
        }
    gap_count, missed = await totals(conn)
    return {
        "events": int(count),
        "bytes": used,
        "free_bytes": free,
        "max_bytes": max_bytes,
        "head_seq": int(head) if head is not None else 0,
        "oldest_observed_at": oldest_obs,
        "newest_observed_at": newest_obs,
        "oldest_event_time": oldest_evt,
        "newest_event_time": newest_evt,
        "dead_letters": sum(dead.values()),
        "gaps": gap_count,
        "occurrences_missed": missed,
        "recent_gaps": [gap._asdict() for gap in await read_gaps(conn, limit=RECENT_GAPS)],
        "receivers": per_receiver,
    }
