"""`spool.maxBytes` bounds the database, its WAL and the WAL index together
(eventpipe.spool.disk), measured on the files while a reader keeps reading, as sinks do."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from eventpipe.metrics import Metrics
from eventpipe.spool import SpoolFullError, disk
from eventpipe.spool.rows import NewRecord
from eventpipe.spool.writer import SpoolWriter
from tests.conftest import OpenSpool
from tests.test_spool_support import corpus_records, synthetic

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def corpus() -> list[NewRecord]:
    return corpus_records()


def spool_files(path: Path) -> int:
    """Bytes of spool.db, spool.db-wal and spool.db-shm as the filesystem reports them."""
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
               if p.exists())


@pytest.mark.parametrize("max_bytes", [1_000_000, 8 * MIB])
def test_the_plan_fits_the_three_files_in_the_budget(max_bytes: int) -> None:
    plan = disk.plan(max_bytes, 16_384)
    assert plan.db_pages is not None and plan.db_pages > 0
    assert plan.db_pages * 16_384 + plan.wal_bytes + disk.SHM_ALLOWANCE <= max_bytes
    assert plan.largest_append is not None and plan.largest_append <= plan.wal_bytes // 4


async def test_max_bytes_bounds_what_the_spool_takes_on_disk_wal_included(
        open_spool: OpenSpool, corpus: list[NewRecord], tmp_path: Path) -> None:
    budget = 8 * MIB
    drops: list[int] = []
    spool = await open_spool("spool.db", max_bytes=budget, when_full="dropOldest",
                             on_drop=lambda n, _: drops.append(n))
    path = tmp_path / "spool.db"
    stop = asyncio.Event()

    async def read_like_a_sink() -> None:
        after = 0
        while not stop.is_set():
            rows = await spool.read_after(after, 500)
            after = rows[-1].seq if rows else after
            await asyncio.sleep(0)

    largest = 0

    def measure() -> None:
        nonlocal largest
        largest = max(largest, spool_files(path))

    writer = SpoolWriter(spool, metrics=Metrics(), full_errors=(SpoolFullError,),
                         on_commit=measure, max_group_bytes=spool.largest_append)
    tasks = [asyncio.create_task(read_like_a_sink()), asyncio.create_task(writer.run())]
    written = 0
    try:
        for offset in range(0, 40_000, 500):
            batch = synthetic(corpus, 500, offset=offset)
            written += sum(len(r.body) for r in batch)
            for record in batch:
                await writer.put("s", record.resource_version, record)
        await writer.wait_idle()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert written > 3 * budget, "the test must write several budgets' worth"
    assert drops, "dropOldest made room"
    assert largest <= budget, f"the spool took {largest} bytes on disk for a {budget} budget"
    stats = await spool.stats()
    assert stats["bytes"] == spool_files(path) and stats["events"] == spool.rows
