"""Tables, indexes and connection settings of the spool file.

docs/architecture.md describes the tables. Two choices are worth knowing:

- `UNIQUE(resource_version, uid)`: resourceVersion first, because it is nearly monotonic, so
  the unique index is appended to at its right edge (faster than uid first; see
  docs/performance.md), and the dedupe lookup in `append` is a batched
  `resource_version IN (...)` on that index.
- One extra index, on `observed_at`, serves history queries, retention's age bound and the
  warm-up of occurrence bookkeeping. `observed_at` is written non-decreasing in seq order, so
  that index, too, only grows at its right edge. Every further index costs insert speed; add
  one only with a measurement.

Connections run in autocommit mode (`isolation_level=None`); the writer opens its
transactions explicitly with `BEGIN IMMEDIATE`, so the write lock is taken up front and a
concurrent writer in another process waits (`busy_timeout`) instead of failing at commit.

Appends go through `append_batch`, a view that exists only on the write connection (TEMP)
whose INSTEAD OF trigger inserts a whole batch and saves the stream's resume point. Why (the
measurements are in docs/performance.md):
- one statement instead of BEGIN, INSERT, resume point, COMMIT: each of those is a trip to
  aiosqlite's thread whose result waits for the event loop's next turn, which in a burst may
  come after the watcher's next read and a sink's batch;
- no executemany: the sqlite3 module releases the GIL around every row's step and must win it
  back for the next row's binding, which with a busy event loop waits up to the 5 ms switch
  interval. The columns travel as one JSON array parsed by SQLite's C code with
  the GIL released, the bodies as one BLOB cut by (offset, length), so they are stored
  byte-for-byte. CAST: SQLite 3.45+ would read a BLOB argument as its binary JSONB format.
- no ORDER BY: json_each walks the array in order and a lone table scan keeps that order (seq
  follows the records, tested), while ORDER BY key adds a sort of every row and its body.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from eventpipe.spool.errors import SpoolSchemaError

SCHEMA_VERSION = 1

# 16 KiB pages: Event bodies average ~1 kB with a tail past 10 kB; against 4 KiB pages this
# means fewer overflow pages and splits per append (docs/performance.md), while larger pages
# make every small commit (acks, quiet clusters) write more WAL bytes for no further gain.
PAGE_SIZE = 16_384

SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

BUSY_TIMEOUT_MS = 10_000
# Appends touch the right edge of the trees and readers scan forward from a cursor, so small
# page caches suffice; they count fully in the resident memory budget (≤ 150 MiB).
WRITER_CACHE_KIB = 8_192
READER_CACHE_KIB = 4_096
# After a checkpoint the WAL file is truncated to this size; the WAL lives outside the
# page budget, so this bounds what the spool may use beyond `max_bytes`.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    resource_version TEXT NOT NULL,
    observed_at REAL NOT NULL,
    event_time REAL,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    type TEXT NOT NULL,
    occurrences INTEGER NOT NULL,
    count_delta INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (resource_version, uid)
);
CREATE INDEX IF NOT EXISTS events_observed_at ON events (observed_at);
CREATE TABLE IF NOT EXISTS cursors (
    receiver TEXT PRIMARY KEY,
    acked_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    receiver TEXT NOT NULL,
    seq INTEGER NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failed_at REAL NOT NULL,
    last_failed_at REAL NOT NULL,
    PRIMARY KEY (receiver, seq)
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    observed_at REAL NOT NULL,
    stream TEXT NOT NULL,
    error TEXT NOT NULL,
    line BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS watch_state (
    stream TEXT PRIMARY KEY,
    resource_version TEXT NOT NULL
);
"""

# TEMP: created by each write connection at open, never stored in the file, so the file's
# schema (and SCHEMA_VERSION) is unchanged. A TEMP trigger may write tables of `main`.
_APPEND_DDL = (
    "CREATE TEMP VIEW IF NOT EXISTS append_batch "
    "(columns, bodies, observed_at, stream, resource_version) "
    "AS SELECT NULL, NULL, NULL, NULL, NULL",
    "CREATE TEMP TRIGGER IF NOT EXISTS append_batch_insert "
    "INSTEAD OF INSERT ON append_batch BEGIN "
    "INSERT INTO events (uid, resource_version, namespace, kind, name, reason, type, "
    "occurrences, event_time, body, observed_at, count_delta) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'), "
    "json_extract(value, '$[8]'), "
    "substr(NEW.bodies, json_extract(value, '$[9]'), json_extract(value, '$[10]')), "
    "NEW.observed_at, json_extract(value, '$[11]') "
    "FROM json_each(CAST(NEW.columns AS TEXT)); "
    # WHERE: also what lets SQLite parse ON CONFLICT after INSERT ... SELECT.
    "INSERT INTO watch_state (stream, resource_version) "
    "SELECT NEW.stream, NEW.resource_version WHERE NEW.resource_version IS NOT NULL "
    "ON CONFLICT (stream) DO UPDATE SET resource_version = excluded.resource_version; "
    "END",
)

# The JSON functions `append_batch` uses: built into SQLite since 3.38 (2022), optional before.
_JSON_PROBE = "SELECT json_extract(value, '$[0]') FROM json_each('[[1]]')"

# Column order of StoredRow (eventpipe.spool.records); every read selects exactly this.
ROW_COLUMNS = (
    "seq, uid, resource_version, observed_at, event_time, namespace, kind, name, reason, "
    "type, occurrences, count_delta, body"
)


async def _connect(path: Path, *, cache_kib: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        await conn.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        await conn.close()
        raise
    return conn


async def open_writer(path: Path, *, synchronous: str) -> aiosqlite.Connection:
    """Open the write connection, switch the file to WAL and create or check the schema."""
    mode = synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}, got {mode!r}")
    conn = await _connect(path, cache_kib=WRITER_CACHE_KIB)
    try:
        # page_size only takes effect on a fresh file, before WAL is switched on.
        await conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        # journal_mode is persistent in the file; setting it again is a cheap no-op.
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute(f"PRAGMA synchronous = {mode}")
        await conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        await _ensure_schema(conn)
        await _check_json_functions(conn)
        for statement in _APPEND_DDL:
            await conn.execute(statement)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _check_json_functions(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute(_JSON_PROBE)
    except sqlite3.OperationalError as exc:
        raise SpoolSchemaError(
            f"SQLite {sqlite3.sqlite_version} lacks the JSON functions the spool appends with "
            f"(json_each, json_extract; built in since SQLite 3.38): {exc}") from exc


async def open_reader(path: Path) -> aiosqlite.Connection:
    """Open a read connection; `query_only` guards against writes slipping onto it."""
    conn = await _connect(path, cache_kib=READER_CACHE_KIB)
    await conn.execute("PRAGMA query_only = 1")
    return conn


async def _ensure_schema(conn: aiosqlite.Connection) -> None:
    # IMMEDIATE so two processes opening a fresh file at once do not both try to create it.
    await conn.execute("BEGIN IMMEDIATE")
    try:
        # executescript would COMMIT first; run the statements one by one inside the txn.
        for statement in _DDL.split(";"):
            if statement.strip():
                await conn.execute(statement)
        rows = await conn.execute_fetchall("SELECT value FROM meta WHERE key = 'schema_version'")
        found = [int(row[0]) for row in rows]
        if not found:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif found[0] != SCHEMA_VERSION:
            raise SpoolSchemaError(
                f"spool schema version {found[0]}, this eventpipe knows {SCHEMA_VERSION}"
            )
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


async def page_size(conn: aiosqlite.Connection) -> int:
    """Bytes per page of the open file."""
    rows = list(await conn.execute_fetchall("PRAGMA page_size"))
    return int(rows[0][0])
