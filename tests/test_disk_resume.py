"""Appends resume after a full disk once the room is back, on a small volume too: the
threshold scales with the volume (eventpipe.spool.reserve), and an append bigger than the
room is refused with `retry_smaller`, for the writer to cut (tests/test_writer.py), instead of
waiting for room that may never come. On a real 20 MiB tmpfs (tests/volumes.py)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from eventpipe.metrics import Metrics
from eventpipe.spool import Spool, SpoolFullError
from eventpipe.spool.disk import MIB
from eventpipe.spool.reserve import RESERVE_BYTES, resume_free
from eventpipe.spool.rows import NewRecord
from eventpipe.spool.writer import SpoolWriter
from tests.test_spool_support import run_writer
from tests.volumes import fill, free_bytes, release, small_volume

BODY = 2_500


def records(first: int, n: int) -> list[NewRecord]:
    return [NewRecord(uid=f"uid-{i}", resource_version=str(i), event_time=None, namespace="ns",
                      kind="Pod", name=f"pod-{i}", reason="BackOff", type="Warning",
                      occurrences=1, body=b"x" * BODY) for i in range(first, first + n)]


async def append_until_full(spool: Spool, first: int, *, batch: int = 250) -> int:
    """Append batches from `first` until the spool is full; returns the next index."""
    while True:
        try:
            await spool.append(records(first, batch), stream="s",
                               resource_version=str(first + batch - 1))
        except SpoolFullError:
            return first
        first += batch


def test_resume_threshold_scales_with_the_volume_or_budget() -> None:
    assert resume_free(reserve=RESERVE_BYTES, scale=20 * MIB) == 5 * MIB
    assert resume_free(reserve=RESERVE_BYTES, scale=1 << 40) == 8 * MIB  # a large disk
    # Never below the reserve plus one append, however small the volume or budget.
    assert resume_free(reserve=RESERVE_BYTES, scale=8 * MIB) == 5 * MIB
    assert resume_free(reserve=RESERVE_BYTES, scale=0) == 5 * MIB


async def test_block_resumes_on_a_20_mib_volume_once_space_returns(tmp_path: Path) -> None:
    with small_volume(tmp_path / "vol", mib=20) as volume:
        spool = await Spool.open(volume / "spool.db", when_full="block")
        try:
            await resumes_after_space_returns(spool, volume)
        finally:
            await spool.close()


async def resumes_after_space_returns(spool: Spool, volume: Path) -> None:
    for first in range(0, 4_500, 250):  # 11 MB of events, then a full disk
        await spool.append(records(first, 250), stream="s", resource_version=str(first))
    fill(volume)
    nxt = await append_until_full(spool, 4_500)
    release(volume)
    with pytest.raises(SpoolFullError) as caught:  # 5 MB at once does not fit the room
        await spool.append(records(nxt, 2_000), stream="s", resource_version=None)
    assert caught.value.retry_smaller
    # What the events and the WAL leave free is less than the former fixed 8 MiB, which
    # kept the watch paused although the room was there.
    assert 5 * MIB < free_bytes(volume) < 8 * MIB - 512 * 1024
    rows = spool.rows
    writer = SpoolWriter(spool, metrics=Metrics(), full_errors=(SpoolFullError,))
    task = asyncio.create_task(writer.run())
    try:
        for record in records(nxt, 300):
            await writer.put("s", record.resource_version, record)
        await asyncio.wait_for(writer.wait_idle(), 60)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert writer.committed == 300 and spool.rows == rows + 300 and writer.writable
    assert (volume / "spool.db-reserve").stat().st_size == RESERVE_BYTES  # held again


async def store_first(spool: Spool) -> None:
    for first in range(0, 2_000, 250):
        await spool.append(records(first, 250), stream="s", resource_version=None)


@pytest.mark.parametrize("full_at_open", [False, True], ids=["reserve_held", "full_at_open"])
async def test_drop_oldest_stores_far_more_than_a_full_volume_holds(tmp_path: Path,
                                                                    full_at_open: bool) -> None:
    """Under dropOldest a full disk keeps taking appends far beyond what it holds while a
    reader reads as receivers do: the oldest are dropped and counted, and the newest stored
    (tests/test_disk_full.py runs the same through the
    whole pipeline, where it once stalled). Also when the disk was too full at open for the
    reserve to be allocated."""
    dropped: list[int] = []
    with small_volume(tmp_path / "vol", mib=20) as volume:
        path = volume / "spool.db"
        if full_at_open:
            spool = await Spool.open(path)
            await store_first(spool)
            await spool.close()
            (volume / "spool.db-reserve").unlink()  # as if it never had room for it
            fill(volume, leave=3 * MIB)
        spool = await Spool.open(path, when_full="dropOldest",
                                 on_drop=lambda n, _reason: dropped.append(n))
        assert (volume / "spool.db-reserve").exists() is not full_at_open

        async def read_on() -> None:  # as a receiver does: its reads keep the WAL from
            after = 0                   # starting over at times
            while True:
                batch = await spool.read_after(after, limit=500)
                after = batch[-1].seq if batch else after
                await asyncio.sleep(0)
        reader = asyncio.create_task(read_on())
        try:
            if not full_at_open:
                await store_first(spool)
                fill(volume)
            # 50 MB more, in the writer's groups
            writer = await run_writer(spool, records(2_000, 20_000), Metrics())
            newest = await spool.read_after(await spool.head_seq() - 1, limit=1)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await spool.close()
    assert writer.committed == 20_000 and writer.writable
    assert sum(dropped) + spool.rows == 22_000 and spool.rows > 1_000, (sum(dropped), spool.rows)
    assert [row.uid for row in newest] == ["uid-21999"]  # the newest stored
