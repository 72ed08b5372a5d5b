"""Measurement 1, the raw ceiling: what parsing and storing the same watch lines costs with no
pipeline around it, so the ingest figure can be read as a fraction of what this machine allows.

Per line: `orjson.loads` of the watch line, `orjson.dumps` of the object (the pipeline stores
the object, not the watch wrapper) and eventpipe's own `to_record` to fill the indexed
columns. Per 500 lines: one `BEGIN IMMEDIATE` / `executemany` / `COMMIT` on a spool file created
by `Spool.open` (same tables, UNIQUE(resource_version, uid), 16 KiB pages, WAL) with
synchronous=FULL. No asyncio, no dedupe SELECT, no occurrence bookkeeping, no metrics.

The end-to-end reference runs the same loop and, after each commit, appends the batch's
objects as JSON lines to a file (one write per batch, what the file receiver does): the
minimal durable watch → file pipeline eventpipe's end-to-end figure is compared with.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

import orjson

from bench.common import WORK
from bench.events import INSERT_ROW, insert_values
from eventpipe.spool import Spool
from eventpipe.watch.normalize import to_record

BATCH = 500


async def _create(path: Path) -> None:
    spool = await Spool.open(path, synchronous="FULL")
    await spool.close()


def run_once(lines: list[bytes], folder: Path, *, to_file: bool = False) -> dict[str, float]:
    """Parse and insert `lines` once into a fresh spool file in `folder` (and, with
    `to_file`, write each committed batch to a JSON-lines file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "raw.db"
    asyncio.run(_create(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA cache_size = -32768")  # the writer's cache in eventpipe.spool.schema
    parse_s = insert_s = 0.0
    output = (folder / "out.jsonl").open("ab") if to_file else None
    started = time.perf_counter()
    for i in range(0, len(lines), BATCH):
        t0 = time.perf_counter()
        now = time.time()
        rows = []
        bodies = []
        for line in lines[i : i + BATCH]:
            obj = orjson.loads(line)["object"]
            record = to_record(obj, orjson.dumps(obj))
            rows.append(insert_values(record, now))
            bodies.append(record.body)
        t1 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_ROW, rows)
        conn.execute("COMMIT")
        if output is not None:
            output.write(b"\n".join(bodies) + b"\n")
            output.flush()
        parse_s += t1 - t0
        insert_s += time.perf_counter() - t1
    elapsed = time.perf_counter() - started
    if output is not None:
        output.close()
    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    if stored != len(lines):
        raise RuntimeError(f"raw insert stored {stored} of {len(lines)} rows")
    return {
        "events_per_s": len(lines) / elapsed,
        "seconds": elapsed,
        "parse_seconds": parse_s,
        "insert_seconds": insert_s,
        "parse_only_events_per_s": len(lines) / parse_s,
        "insert_only_events_per_s": len(lines) / insert_s,
    }


def measure(lines: list[bytes], runs: int) -> list[dict[str, float]]:
    """`runs` independent runs, each on a fresh file; each run also measures the end-to-end
    reference (`e2e_events_per_s`)."""
    results = []
    for i in range(runs):
        folder = WORK / f"raw-{i}"
        try:
            result = run_once(lines, folder)
            shutil.rmtree(folder, ignore_errors=True)
            result["e2e_events_per_s"] = run_once(lines, folder, to_file=True)["events_per_s"]
            results.append(result)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results
