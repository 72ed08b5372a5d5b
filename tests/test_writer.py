"""The group-commit writer against a real spool: grouping, resume points, byte budget."""

from __future__ import annotations

import asyncio

import orjson

from eventpipe.metrics import Metrics
from eventpipe.spool import NewRecord, Spool, SpoolFullError
from eventpipe.spool.writer import SpoolWriter
from eventpipe.watch.normalize import to_record
from tests.conftest import OpenSpool
from tests.test_spool_support import GatedSpool, run_writer


def big_record(i: int, size: int) -> NewRecord:
    obj = {"metadata": {"uid": f"u{i}", "resourceVersion": str(i + 1), "namespace": "n"},
           "message": "x" * size}
    return to_record(obj, orjson.dumps(obj))


async def test_groups_commit_with_their_resume_point(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    metrics = Metrics()
    await run_writer(spool, [big_record(i, 10) for i in range(1200)], metrics)
    assert await spool.head_seq() == 1200
    assert await spool.resume_point("s") == "1200"
    commits = next(iter(metrics.spool_commit_seconds.collect())).samples
    count = next(s.value for s in commits if s.name.endswith("_count"))
    assert 1 <= count <= 20  # grouped: not one commit per event


async def test_a_group_larger_than_the_budget_is_split_not_stuck(
        open_spool: OpenSpool) -> None:
    dropped: list[int] = []
    spool = await open_spool(max_bytes=2 * 1024 * 1024, when_full="dropOldest",
                             on_drop=lambda n, _: dropped.append(n))
    metrics = Metrics()
    writer = await run_writer(spool, [big_record(i, 8000) for i in range(500)], metrics)
    assert writer.committed == 500  # every event was stored at some point
    assert await spool.resume_point("s") == "500"
    stats = await spool.stats()
    assert isinstance(stats["events"], int)
    assert stats["events"] + sum(dropped) == 500 and sum(dropped) > 0


async def test_an_event_larger_than_the_whole_budget_is_dropped_and_counted(
        open_spool: OpenSpool) -> None:
    spool = await open_spool(max_bytes=1024 * 1024, when_full="dropOldest")
    metrics = Metrics()
    records = [big_record(0, 100), big_record(1, 3 * 1024 * 1024), big_record(2, 100)]
    await run_writer(spool, records, metrics)
    assert metrics.spool_dropped.labels("larger_than_budget")._value.get() == 1
    assert [row.uid for row in await spool.read_after(0, 10)] == ["u0", "u2"]
    assert await spool.resume_point("s") == "3"


class ShortDisk(GatedSpool):
    """A spool on a disk with room for at most `rows` rows per append, answering a bigger one
    as the spool does after a full disk (`retry_smaller`); a real disk's room cannot be set
    that exactly."""

    def __init__(self, spool: Spool, rows: int) -> None:
        super().__init__(spool)
        self.gate.set()
        self.rows = rows
        self.refused: list[int] = []

    async def append_counted(self, records: list[NewRecord], *, stream: str,
                             resource_version: str | None) -> list[tuple[int, int]]:
        if len(records) > self.rows:
            self.refused.append(len(records))
            raise SpoolFullError("the disk is short", retry_smaller=True)
        return await super().append_counted(records, stream=stream,
                                            resource_version=resource_version)


async def test_a_group_bigger_than_the_room_after_a_full_disk_is_cut_not_dropped(
        open_spool: OpenSpool) -> None:
    spool = await open_spool()
    short = ShortDisk(spool, rows=300)
    writer = SpoolWriter(short, metrics=Metrics(), batch_max_events=1200,
                         full_errors=(SpoolFullError,))
    task = asyncio.create_task(writer.run())
    try:
        for record in [big_record(i, 10) for i in range(1200)]:
            await writer.put("s", record.resource_version, record)
        await asyncio.wait_for(writer.wait_idle(), 60)
    finally:
        task.cancel()
    assert short.refused == [1200, 600, 600]  # halved until it fits
    assert writer.committed == 1200 and writer.writable
    assert [row.uid for row in await spool.read_after(0, 2000)] == [f"u{i}" for i in range(1200)]
    assert await spool.resume_point("s") == "1200"
