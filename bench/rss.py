"""Measurement 4, peak RSS with a large spool: memory must not grow with what is stored.

A spool of `spool_events` corpus-derived rows is built once (file created by `Spool.open`, so
the schema, page size and WAL are eventpipe's; rows inserted with raw sqlite3 in big
transactions, synchronous=OFF, because only the result matters). Rows are normalised by
eventpipe's `to_record`, observed over the last 24 h (so start-up warms its occurrence book
from the last two hours, as after a restart in a busy cluster), and the file receiver's cursor
sits 1,000 rows below the head. Each run copies that file, starts eventpipe on it, lets the
fake API server burst `events` more into the watch, waits until they are spooled and written,
and reads VmHWM.

Enrichment is on, as in the default config, and has something to hold: the fake API server
serves the enrichment benchmark's Pods (bench.enrich: 10,000, with their ReplicaSets,
Deployments and Nodes) and every new Event is about one of them; the burst, or the steady
stream, starts once eventpipe's metadata caches have synced (listed and watching).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

from bench.common import (
    WORK,
    LineTail,
    SpoolProbe,
    eventpipe,
    fake_api,
    vm_hwm_mib,
    wait_until,
    write_config,
)
from bench.enrich import CACHES, PODS
from bench.events import INSERT_ROW, insert_values, spool_records
from eventpipe.spool import Spool

BACKLOG = 1_000
RECEIVER = "dump"
SPREAD_S = 86_400.0


async def _create(path: Path) -> None:
    spool = await Spool.open(path)
    await spool.close()


def prefill(path: Path, n: int) -> float:
    """Build a spool of `n` rows at `path` (kept for later runs); returns seconds taken."""
    if path.exists():
        return 0.0
    started = time.perf_counter()
    building = path.with_suffix(".building")
    for stale in building.parent.glob(building.name + "*"):
        stale.unlink()
    asyncio.run(_create(building))
    conn = sqlite3.connect(building, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    first = time.time() - SPREAD_S
    seq = 0
    for chunk in spool_records(n, start=10_000_000):
        rows = []
        for record in chunk:
            rows.append(insert_values(record, first + seq * SPREAD_S / n))
            seq += 1
        conn.execute("BEGIN")
        conn.executemany(INSERT_ROW, rows)
        conn.execute("COMMIT")
    conn.execute("INSERT INTO cursors (receiver, acked_seq) VALUES (?, ?)",
                 (RECEIVER, max(0, seq - BACKLOG)))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    building.rename(path)
    return time.perf_counter() - started


STEADY_RATE = 2_000
STEADY_SECONDS = 20


def run_once(pristine: Path, spool_events: int, events: int, folder: Path,
             *, steady: bool = False) -> dict[str, float]:
    """Copy the pre-filled spool, run eventpipe on it through a burst of `events` (or, with
    `steady`, a stream of STEADY_RATE events/s for STEADY_SECONDS), return VmHWM."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig, spool, output = folder / "kubeconfig", folder / "spool.db", folder / "out.jsonl"
    shutil.copyfile(pristine, spool)
    probe, tail = SpoolProbe(spool), LineTail(output)
    start_rv = str(spool_events + 1_000_000)  # above every pre-filled resourceVersion
    if steady:
        events = STEADY_RATE * STEADY_SECONDS
        load: tuple[str, ...] = ("--after-watch", "--rate", str(STEADY_RATE),
                                 "--rate-total", str(events))
    else:
        load = ("--watch-burst", str(events))
    enriched = ("--pods", str(PODS), "--after-object-watches", str(CACHES))
    with fake_api(kubeconfig, "--start-rv", start_rv, *enriched, *load) as api:
        config = write_config(folder, kubeconfig=kubeconfig, spool=spool, output=output)
        launched = time.time()
        with eventpipe(config, folder / "eventpipe.log") as proc:
            try:
                watching = api.wait_mark("watch-open", within=120)
                t0 = _stream_start(probe) if steady else api.wait_mark("burst-start", within=120)
                rss_at_watch = vm_hwm_mib(proc.pid)

                def caught_up() -> bool:
                    tail.poll()
                    return (tail.count >= BACKLOG + events
                            and probe.head() >= spool_events + events)

                done = wait_until(caught_up, within=300, alive=proc, every=0.05,
                                  what=f"{events} more events spooled and written")
                rss = vm_hwm_mib(proc.pid)
            finally:
                probe.close()
                tail.close()
    return {
        "peak_rss_mib": rss,
        "rss_at_watch_open_mib": rss_at_watch,
        "startup_seconds": watching - launched,
        "burst_seconds": done - t0,
    }


def _stream_start(probe: SpoolProbe) -> float:
    # The steady stream starts once the caches have synced; the first new row marks it.
    start = probe.head()
    wait_until(lambda: probe.head() > start, within=120, what="the stream to start")
    return time.time()


def measure(spool_events: int, events: int, runs: int, *, steady: bool = False
            ) -> tuple[float, list[dict[str, float]]]:
    """Prefill once (cached in bench/out/work), then `runs` runs on fresh copies."""
    pristine = WORK / f"prefilled-{spool_events}.db"
    pristine.parent.mkdir(parents=True, exist_ok=True)
    prefill_s = prefill(pristine, spool_events)
    results = []
    for i in range(runs):
        folder = WORK / f"rss-{i}"
        try:
            results.append(run_once(pristine, spool_events, events, folder, steady=steady))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return prefill_s, results
