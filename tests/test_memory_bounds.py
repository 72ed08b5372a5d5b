"""The memory bounds the config sets (docs/performance.md, "Where memory goes") reach the parts
that hold the memory: the watch→spool buffer, the SQLite page caches, the watch read buffer,
the occurrence book."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eventpipe.config.loader import load_config
from eventpipe.kube.client import connect
from eventpipe.metrics import Metrics
from eventpipe.spool import NewRecord, SpoolFullError
from eventpipe.spool.from_config import open_spool as open_configured_spool
from eventpipe.spool.writer import SpoolWriter
from eventpipe.watch.api import KubeEventsApi
from tests.conftest import OpenSpool
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import running, write_config
from tests.test_spool_support import GatedSpool, corpus_records
from tests.test_writer import big_record


def bounds(tmp_path: Path) -> dict[str, object]:
    """Config sections setting every bound to a value no default has."""
    return {"spool": {"path": str(tmp_path / "spool.db"), "bufferMaxEvents": 300,
                      "bufferMaxBytes": "1Mi", "writerCacheSize": "1Mi",
                      "readerCacheSize": "512Ki", "occurrenceBookMaxUids": 1000,
                      "occurrenceBookRecentUids": 100},
            "watch": {"readBufferSize": "64Ki"}}


async def _puts_before_blocking(writer: SpoolWriter, records: list[NewRecord]) -> int:
    """Put records one by one until a put waits for space; returns how many were taken."""
    for taken, record in enumerate(records):
        put = asyncio.create_task(writer.put("s", record.resource_version, record))
        done, _ = await asyncio.wait([put], timeout=0.5)
        if not done:
            put.cancel()
            return taken
    return len(records)


async def test_the_watch_waits_once_the_buffer_holds_its_bytes(open_spool: OpenSpool) -> None:
    gated = GatedSpool(await open_spool())
    writer = SpoolWriter(gated, metrics=Metrics(), batch_max_events=500, batch_max_wait=0.01,
                         max_buffered=1000, max_buffered_bytes=50_000,
                         full_errors=(SpoolFullError,))
    task = asyncio.create_task(writer.run())
    try:
        records = [big_record(i, 10_000) for i in range(20)]
        taken = await _puts_before_blocking(writer, records)
        # Each body is a little over 10 kB: the sixth put finds 50,000 bytes buffered.
        assert taken == 5
        gated.gate.set()
        for record in records[taken:]:
            await writer.put("s", record.resource_version, record)
        await asyncio.wait_for(writer.wait_idle(), 30)
        assert await gated.spool.head_seq() == 20
    finally:
        task.cancel()


async def test_the_watch_waits_once_the_buffer_holds_its_events(open_spool: OpenSpool) -> None:
    gated = GatedSpool(await open_spool())
    writer = SpoolWriter(gated, metrics=Metrics(), batch_max_events=2, batch_max_wait=0.01,
                         max_buffered=3, full_errors=(SpoolFullError,))
    task = asyncio.create_task(writer.run())
    try:
        assert await _puts_before_blocking(writer, [big_record(i, 10) for i in range(10)]) == 3
    finally:
        gated.gate.set()
        task.cancel()


async def test_the_configured_page_caches_are_the_connections(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                                      extra=bounds(tmp_path)))
    spool = await open_configured_spool(config)
    try:
        writer, reader = spool._writer, spool._reader
        assert list(await writer.execute_fetchall("PRAGMA cache_size")) == [(-1024,)]
        assert list(await reader.execute_fetchall("PRAGMA cache_size")) == [(-512,)]
    finally:
        await spool.close()


async def test_the_writer_gets_its_page_cache_back_after_the_warm_up(tmp_path: Path) -> None:
    # The scans at open run through a smaller cache; appends must not keep that one.
    records = corpus_records()[:50]
    config = load_config(write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                                      extra=bounds(tmp_path)))
    spool = await open_configured_spool(config)
    await spool.append(records, stream="s", resource_version="1")
    await spool.close()
    spool = await open_configured_spool(config)
    try:
        assert (spool._book.max_uids, spool._book.recent_uids) == (1000, 100)
        assert len(spool._book) == len({r.uid for r in records})
        assert list(await spool._writer.execute_fetchall("PRAGMA cache_size")) == [(-1024,)]
    finally:
        await spool.close()


async def test_a_watch_response_buffers_twice_the_read_buffer_size(
        api: FakeApiServer, tmp_path: Path) -> None:
    api_client = await connect(str(tmp_path / "kubeconfig"), read_bufsize=64 * 1024)
    try:
        events = KubeEventsApi(api_client, api_group="core", namespace="")
        resp = await events.request(watch=True, resource_version="0", timeout_seconds=1)
        try:
            assert resp.content.get_read_buffer_limits() == (64 * 1024, 128 * 1024)
        finally:
            resp.release()
    finally:
        await api_client.close()


async def test_the_running_pipeline_takes_its_bounds_from_the_config(
        api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra=bounds(tmp_path))
    async with running(config) as pipeline:
        (watcher,) = pipeline.watchers
        assert watcher._settings.read_bytes == 64 * 1024
        assert watcher._writer.bounds == (300, 1024 * 1024)
