"""Append throughput with corpus events, measured by hand (not a timed assertion).

Run: `.venv/bin/python -m tests.test_spool_throughput [events] [batch] [synchronous]`.
Under pytest only a small smoke run executes, checking that every event arrived.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from eventpipe.spool import Spool
from tests.test_spool_support import corpus_records, synthetic


async def measure(
    path: Path, *, total: int, batch: int, synchronous: str = "FULL"
) -> tuple[float, int]:
    """Append `total` synthetic corpus events in batches; returns (events/s, rows stored)."""
    events = synthetic(corpus_records(), total)
    spool = await Spool.open(path, synchronous=synchronous)
    try:
        rv = 0
        start = time.perf_counter()
        cpu = time.process_time()
        for i in range(0, total, batch):
            part = events[i : i + batch]
            rv += len(part)
            await spool.append(part, stream="all", resource_version=str(rv))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        stored = await spool.head_seq()
    finally:
        await spool.close()
    print(f"wall {elapsed:.2f} s, process CPU {cpu:.2f} s ({total / cpu:,.0f} events per CPU-s)")
    return total / elapsed, stored


async def test_the_measured_run_stores_every_event(tmp_path: Path) -> None:
    # The rate is printed by `python -m tests.test_spool_throughput`, not asserted: a timed
    # unit test would only measure how busy the machine is.
    _rate, stored = await measure(tmp_path / "s.db", total=5_000, batch=500)
    assert stored == 5_000


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    sync = sys.argv[3] if len(sys.argv) > 3 else "FULL"
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        rate, stored = asyncio.run(
            measure(Path(tmp) / "spool.db", total=total, batch=batch, synchronous=sync)
        )
    print(f"{stored} events, batch {batch}, synchronous={sync}: {rate:,.0f} events/s")


if __name__ == "__main__":
    main()
