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

The `events` table's columns are declared once, in eventpipe.spool.rows; this module builds
its CREATE TABLE and the append's trigger from that declaration.

Appends go through `append_batch`, a TEMP view whose INSTEAD OF trigger inserts a whole batch
and saves the stream's resume point in one statement:
- TEMP: view and trigger live in the connection's `temp` schema, not in the file. Each write
  connection creates them when it opens (`open_writer`), they vanish when it closes, and read
  connections never have them. So the file's schema, and SCHEMA_VERSION, do not depend on how
  appends are made, and a file written by one version of the trigger opens under another. A
  TEMP trigger may write the tables of `main`.
- one statement instead of BEGIN, INSERT, resume point, COMMIT: each of those is a trip to
  aiosqlite's thread whose result waits for the event loop's next turn, which in a burst may
  come after the watcher's next read and a sink's batch;
- no executemany: the sqlite3 module releases the GIL around every row's step and must win it
  back for the next row's binding, which with a busy event loop waits up to the 5 ms switch
  interval. The columns travel as one JSON array (`rows.JSON_LAYOUT`, one element per record)
  parsed by SQLite's C code with the GIL released, the bodies as one BLOB cut by (offset,
  length), so they are stored byte-for-byte. CAST: SQLite 3.45+ would read a BLOB argument as
  its binary JSONB format. The measurements are in docs/performance.md.
- U+0000: SQLite's JSON functions end a text value at an escaped NUL, which the API server
  may serve inside a name or reason. A batch holding one sets `texts_in_bodies` and carries
  every text as an (offset, length) pair into the bodies BLOB, cast back to TEXT (the same
  bytes a bound str stores). Same statement, same order; the usual batch pays one test of a
  per-statement flag per text column.
- Order: seq follows the records, because json_each walks an array's elements in array order
  (its `key` column, the element's index, comes out ascending) and a lone table-valued scan
  feeding an INSERT keeps that order. SQLite's documentation does not promise this in so many
  words, so the spool relies on it only with tests that fail if it stops holding
  (tests/test_spool_unit.py: `test_a_batch_is_stored_in_record_order`,
  `test_json_each_walks_an_array_in_order`). No ORDER BY key: it adds a sort of every row and
  its body (docs/performance.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from eventpipe.spool import gaps, rows
from eventpipe.spool.errors import SpoolSchemaError, SpoolVersionError

SCHEMA_VERSION = 2
# What opening a file of an older version adds, besides the `CREATE ... IF NOT EXISTS` of
# _DDL (which creates any table the file lacks): version → statements to reach the next one.
# 1 → 2: the `gaps` table (loss accounting), created by _DDL; no other change.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: ()}

# 16 KiB pages: Event bodies average ~1 kB with a tail past 10 kB; against 4 KiB pages this
# means fewer overflow pages and splits per append (docs/performance.md), while larger pages
# make every small commit (acks, quiet clusters) write more WAL bytes for no further gain.
PAGE_SIZE = 16_384

SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

BUSY_TIMEOUT_MS = 10_000
# Appends touch the right edge of the trees and readers scan forward from a cursor, so small
# page caches suffice; they count fully in the resident memory budget (docs/performance.md).
# The defaults of `spool.writerCacheSize` and `spool.readerCacheSize`: halving them from 4 and
# 2 MiB took ~2 MiB off the burst and steady peaks for no ingest rate (docs/performance.md).
WRITER_CACHE_KIB = 2_048
READER_CACHE_KIB = 1_024
# After a checkpoint the WAL file is truncated to this size; with `spool.maxBytes` the spool
# sets a smaller limit, the WAL's share of the budget (eventpipe.spool.disk).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    rows.create_table(["UNIQUE (resource_version, uid)"]),
    "CREATE INDEX IF NOT EXISTS events_observed_at ON events (observed_at)",
    "CREATE TABLE IF NOT EXISTS cursors (receiver TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dead_letters (receiver TEXT NOT NULL, seq INTEGER NOT NULL, "
    "error TEXT NOT NULL, attempts INTEGER NOT NULL, first_failed_at REAL NOT NULL, "
    "last_failed_at REAL NOT NULL, PRIMARY KEY (receiver, seq))",
    "CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "observed_at REAL NOT NULL, stream TEXT NOT NULL, error TEXT NOT NULL, line BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS watch_state (stream TEXT PRIMARY KEY, "
    "resource_version TEXT NOT NULL)",
    gaps.CREATE_TABLE,
)

# See the module docstring: TEMP objects of the write connection, created at each open.
_APPEND_DDL = (
    "CREATE TEMP VIEW IF NOT EXISTS append_batch "
    "(columns, bodies, texts_in_bodies, observed_at, stream, resource_version) "
    "AS SELECT NULL, NULL, NULL, NULL, NULL, NULL",
    "CREATE TEMP TRIGGER IF NOT EXISTS append_batch_insert "
    "INSTEAD OF INSERT ON append_batch BEGIN "
    f"INSERT INTO events ({', '.join(rows.INSERT_COLUMNS)}) "
    f"SELECT {', '.join(rows.INSERT_VALUES)} "
    "FROM json_each(CAST(NEW.columns AS TEXT)); "
    # WHERE: also what lets SQLite parse ON CONFLICT after INSERT ... SELECT.
    "INSERT INTO watch_state (stream, resource_version) "
    "SELECT NEW.stream, NEW.resource_version WHERE NEW.resource_version IS NOT NULL "
    "ON CONFLICT (stream) DO UPDATE SET resource_version = excluded.resource_version; "
    "END",
)

# The JSON functions `append_batch` uses: built into SQLite since 3.38 (2022), optional before.
_JSON_PROBE = "SELECT json_extract(value, '$[0]') FROM json_each('[[1]]')"

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


async def open_writer(path: Path, *, synchronous: str, cache_kib: int = WRITER_CACHE_KIB
                      ) -> aiosqlite.Connection:
    """Open the write connection, switch the file to WAL and create or check the schema."""
    mode = synchronous.upper()
    if mode not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}, got {mode!r}")
    conn = await _connect(path, cache_kib=cache_kib)
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


async def open_reader(path: Path, *, cache_kib: int = READER_CACHE_KIB) -> aiosqlite.Connection:
    """Open a read connection; `query_only` guards against writes slipping onto it."""
    conn = await _connect(path, cache_kib=cache_kib)
    await conn.execute("PRAGMA query_only = 1")
    return conn


async def _ensure_schema(conn: aiosqlite.Connection) -> None:
    # IMMEDIATE so two processes opening a fresh file at once do not both try to create it.
    await conn.execute("BEGIN IMMEDIATE")
    try:
        # executescript would COMMIT first; run the statements one by one inside the txn.
        for statement in _DDL:
            await conn.execute(statement)
        rows = await conn.execute_fetchall("SELECT value FROM meta WHERE key = 'schema_version'")
        found = [int(row[0]) for row in rows]
        if not found:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif found[0] != SCHEMA_VERSION:
            await _migrate(conn, found[0])
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


async def _migrate(conn: aiosqlite.Connection, version: int) -> None:
    """Bring a file of an older schema version up to SCHEMA_VERSION (inside the open
    transaction); a newer or unknown version is refused."""
    if version not in MIGRATIONS:
        raise SpoolVersionError(
            f"spool schema version {version}, this eventpipe knows {SCHEMA_VERSION}"
        )
    while version < SCHEMA_VERSION:
        for statement in MIGRATIONS[version]:
            await conn.execute(statement)
        version += 1
    await conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                       (str(SCHEMA_VERSION),))


async def page_size(conn: aiosqlite.Connection) -> int:
    """Bytes per page of the open file."""
    rows = list(await conn.execute_fetchall("PRAGMA page_size"))
    return int(rows[0][0])
