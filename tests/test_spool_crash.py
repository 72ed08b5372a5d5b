"""Durability across a real crash: a writer process is SIGKILLed mid-stream and reopened.

Everything the child reported committed must be there, the resume point must name the last
committed batch (no batch half-stored), and count_delta of the next version must continue from
the stored occurrences.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from eventpipe.spool.rows import NewRecord
from tests.conftest import OpenSpool

WIDTH = 50
REPO = Path(__file__).resolve().parents[1]

CHILD = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from eventpipe.spool import Spool
from tests.test_spool_crash import batch

async def main():
    spool = await Spool.open(sys.argv[1])
    k = 0
    while True:
        k += 1
        await spool.append(batch(k), stream="all", resource_version=str(k))
        print(k, flush=True)

asyncio.run(main())
"""


def batch(k: int) -> list[NewRecord]:
    """Batch k: a new version of each of WIDTH Events, whose count is now k."""
    body = b'{"kind":"Event","message":"' + b"x" * 900 + b'"}'
    return [
        NewRecord(uid=f"uid-{j}", resource_version=f"{k}-{j}", event_time=None, namespace="ns",
                  kind="Pod", name=f"pod-{j}", reason="BackOff", type="Warning", occurrences=k,
                  body=body)
        for j in range(WIDTH)
    ]


async def test_committed_batches_survive_sigkill(tmp_path: Path,
                                                 open_spool: OpenSpool) -> None:
    path = tmp_path / "spool.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), str(REPO), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    reported = 0
    while reported < 40:
        line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
        assert line, "writer exited early"
        reported = int(line)
    child.send_signal(signal.SIGKILL)  # mid-stream: it keeps appending until the signal lands
    await child.wait()

    spool = await open_spool(path.name)
    resume = await spool.resume_point("all")
    assert resume is not None
    last = int(resume)
    assert last >= reported
    assert await spool.head_seq() == last * WIDTH  # whole batches only
    rows = await spool.read_after(0, last * WIDTH + 10)
    assert [(r.uid, r.resource_version) for r in rows] == [
        (f"uid-{j}", f"{k}-{j}") for k in range(1, last + 1) for j in range(WIDTH)
    ]
    assert {r.count_delta for r in rows} == {1}
    nxt = [r._replace(occurrences=last + 3) for r in batch(last + 1)]
    await spool.append(nxt, stream="all", resource_version=str(last + 1))
    fresh = await spool.read_after(last * WIDTH, WIDTH + 1)
    assert [r.count_delta for r in fresh] == [3] * WIDTH
