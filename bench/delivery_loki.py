"""Delivery to Loki: events/s from a pre-filled spool through the real sink driver to the fake.

A spool of `events` corpus-derived rows (`bench.events.spool_records`, inserted with raw
sqlite3 into a file `Spool.open` created) is delivered by a `SinkWorker` running the `loki`
sink with its defaults (batch.maxEvents 500, 1 MiB requests, gzip), in this process, to the
fake Loki running as its own process (`python -m tests.fakes.loki`, an ordering window wide
enough for the corpus's years of timestamps), so the fake's decoding does not share our core.
The clock runs from the worker's start until its cursor reaches the spool head; the fake's
`/stats` then confirms every event was stored once.

`python -m bench.delivery_loki [events] [runs]` prints each run and the median.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from bench.common import REPO, _stop, free_port
from bench.events import INSERT_ROW, insert_values, spool_records
from eventpipe.delivery.driver import Delivery, DeliverySettings, NewData, SinkWorker
from eventpipe.metrics import Metrics
from eventpipe.sinks.loki.config import LokiSinkConfig
from eventpipe.sinks.loki.sink import LokiSink
from eventpipe.spool import Spool

RECEIVER = "loki"
BATCH = 500


def prefill(path: Path, n: int) -> None:
    """A spool of `n` corpus-derived rows at `path`, none acked."""
    async def create() -> None:
        await (await Spool.open(path)).close()

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    now = time.time()
    for chunk in spool_records(n):
        conn.execute("BEGIN")
        conn.executemany(INSERT_ROW, [insert_values(r, now) for r in chunk])
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@contextlib.contextmanager
def fake_loki() -> Iterator[str]:
    """The fake Loki in a child process; yields its push URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.loki", "--port", str(port),
                             "--window", str(100 * 365 * 86400)],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if not proc.stdout.readline().startswith("listening"):
            raise RuntimeError(f"fake Loki did not start (exit {proc.poll()})")
        yield f"http://127.0.0.1:{port}/loki/api/v1/push"
    finally:
        _stop(proc, grace=10.0)


async def _deliver(spool_path: Path, url: str) -> dict[str, float]:
    spool = await Spool.open(spool_path)
    try:
        head = await spool.head_seq()
        metrics = Metrics()
        sink = LokiSink(name=RECEIVER, config=LokiSinkConfig.model_validate({"url": url}))
        settings = DeliverySettings(batch_max_events=BATCH, batch_max_wait=0.0)
        stopping = asyncio.Event()
        worker = SinkWorker(Delivery(sink, router=None, settings=settings, metrics=metrics,
                                     stopping=stopping),
                            spool=spool, new_data=NewData(), settings=settings, metrics=metrics,
                            stopping=stopping)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        while worker.acked_seq < head:
            if task.done():
                task.result()
                raise RuntimeError("worker stopped early")
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        stopping.set()
        await task
        dead = len(await spool.dead_letters(RECEIVER))
    finally:
        await spool.close()
    async with aiohttp.ClientSession() as session, session.get(
            url.replace("/loki/api/v1/push", "/stats")) as resp:
        stats = await resp.json()
    return {"events": head, "seconds": seconds, "events_per_s": head / seconds,
            "batch_size": BATCH, "requests": sink.requests, "stored": stats["stored"],
            "duplicates": stats["duplicates"], "dead_letters": dead}


def run(events: int = 100_000) -> dict[str, float]:
    """One measurement: a fresh spool of `events` rows delivered to a fresh fake Loki."""
    with tempfile.TemporaryDirectory(prefix="delivery-loki-") as tmp:
        spool_path = Path(tmp) / "spool.db"
        prefill(spool_path, events)
        with fake_loki() as url:
            result = asyncio.run(_deliver(spool_path, url))
    if result["stored"] != events or result["dead_letters"]:
        raise RuntimeError(f"not every event delivered exactly once: {result}")
    return result


def main() -> None:
    """Print each run and the median events/s."""
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    rates = []
    for i in range(runs):
        result = run(events)
        rates.append(result["events_per_s"])
        print(f"run {i + 1}: " + ", ".join(f"{k}={v:,.1f}" if isinstance(v, float)
                                          else f"{k}={v:,}" for k, v in result.items()),
              flush=True)
    print(f"median: {statistics.median(rates):,.0f} events/s over {runs} runs of {events:,}")


if __name__ == "__main__":
    main()
