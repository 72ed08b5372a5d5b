"""Restart cost of a busy spool: build N rows stored within two hours (one new Event each),
then time `Spool.open` (the occurrence book's warm-up) and report the peak RSS.

    python -m bench.spool_warm build SPOOL N   # once; 1,000,000 rows is ~360 MB
    python -m bench.spool_warm open SPOOL      # in a fresh process each time
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from pathlib import Path

from eventpipe.spool import NewRecord, Spool

BATCH = 5_000
BODY = b'{"kind":"Event","message":"' + b"x" * 150 + b'"}'


async def build(path: Path, n: int) -> None:
    """Append `n` versions of `n` distinct Events."""
    spool = await Spool.open(path, synchronous="OFF")
    try:
        for start in range(0, n, BATCH):
            records = [NewRecord(uid=f"uid-{i:08d}-0000-0000-0000-000000000000",
                                 resource_version=str(i + 1), event_time=None, namespace="ns",
                                 kind="Pod", name=f"p{i}", reason="BackOff", type="Warning",
                                 occurrences=1, body=BODY)
                       for i in range(start, min(n, start + BATCH))]
            await spool.append(records, stream="s", resource_version=str(start))
    finally:
        await spool.close()


async def open_once(path: Path) -> None:
    """Print how long opening took and the process's peak RSS."""
    started = time.perf_counter()
    spool = await Spool.open(path)
    took = time.perf_counter() - started
    await spool.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"open: {took:.2f} s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    command, spool_path = sys.argv[1], Path(sys.argv[2])
    if command == "build":
        asyncio.run(build(spool_path, int(sys.argv[3])))
    else:
        asyncio.run(open_once(spool_path))
