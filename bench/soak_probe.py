"""The soak's view of the spool from outside: rows held, and one receiver's backlog.

A read-only connection (WAL lets it read beside eventpipe's writer without blocking it); the
backlog is the spool's newest seq minus the receiver's cursor, the rows eventpipe still has to
send there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class SoakProbe:
    """Counts rows and reads `receiver`'s cursor in the spool at `path`."""

    def __init__(self, path: Path, *, receiver: str) -> None:
        self.path = path
        self.receiver = receiver
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and self.path.exists():
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self._conn

    def rows_and_backlog(self) -> tuple[int, int]:
        """(rows in the events table, rows past the receiver's cursor); zeros before the
        schema exists."""
        conn = self._connection()
        if conn is None:
            return 0, 0
        try:
            rows, head = conn.execute("SELECT count(*), max(seq) FROM events").fetchone()
            cursor = conn.execute("SELECT acked_seq FROM cursors WHERE receiver = ?",
                                  (self.receiver,)).fetchone()
        except sqlite3.OperationalError:  # schema not created yet
            return 0, 0
        return int(rows), max(0, int(head or 0) - int(cursor[0] if cursor else 0))

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
