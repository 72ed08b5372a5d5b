"""Pure parts of the watcher: backoff delays, watch timeouts, normalisation of both APIs."""

from __future__ import annotations

import random
from itertools import islice
from pathlib import Path

import orjson
import pytest

from eventpipe.core.backoff import exponential_backoff, watch_timeout
from eventpipe.core.occurrences import occurrences
from eventpipe.core.timestamps import last_seen
from eventpipe.watch.normalize import MalformedEvent, to_record
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import corpus_files, read_lines, running, wait_until, write_config


def test_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    delays = list(islice(exponential_backoff(initial=0.8, maximum=30, jitter=False), 8))
    assert delays == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30]


def test_full_jitter_stays_under_the_growing_cap() -> None:
    rng = random.Random(7)
    delays = list(islice(exponential_backoff(initial=0.5, maximum=300, rng=rng), 20))
    caps = [min(300, 0.5 * 2**i) for i in range(20)]
    assert all(0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == 20  # jittered, not a fixed ladder


def test_watch_timeouts_are_jittered_within_the_window() -> None:
    rng = random.Random(1)
    values = [watch_timeout(300, 600, rng) for _ in range(200)]
    assert all(300 <= v < 600 for v in values)
    assert len(set(values)) > 50


def test_normalisation_fallbacks() -> None:
    assert occurrences({"series": {"count": 7}, "count": 2}) == 7
    assert occurrences({"deprecatedCount": 4}) == 4
    assert occurrences({"count": None}) == 1
    assert last_seen({"series": {"lastObservedTime": "2026-01-01T00:00:01.500000Z"}}) == (
        1767225601.5)
    assert last_seen({"lastTimestamp": None, "eventTime": "2026-01-01T00:00:00.000000Z"}) == (
        1767225600.0)
    assert last_seen({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}) == 1767225600
    assert last_seen({}) is None
    with pytest.raises(MalformedEvent):
        to_record({"metadata": {"uid": "x"}}, b"{}")


def test_every_corpus_event_normalises() -> None:
    seen = 0
    for path in corpus_files():
        for line in path.read_bytes().splitlines():
            obj = orjson.loads(line)
            if "resourceVersion" not in obj.get("metadata", {}):
                continue
            record = to_record(obj, line)
            assert record.uid == obj["metadata"]["uid"]
            assert record.occurrences >= 1
            seen += 1
    assert seen > 5900


async def test_api_errors_back_off_and_recover_without_relisting(api: FakeApiServer,
                                                                 tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"watch": {"backoffInitial": "50ms", "backoffMax": "200ms"}})
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        api.fail_next(2, 429, retry_after=0, only="watch")
        api.fail_next(2, 500, only="watch")
        api.disconnect_all()
        api.add({"metadata": {"name": "e1", "namespace": "default"}, "reason": "Started",
                 "involvedObject": {"kind": "Pod", "name": "p"}})
        await wait_until(lambda: len(read_lines(out)) == 1, what="event after errors")
        restarts = pipeline.metrics.watch_restarts
        assert restarts.labels("core/*", "http_429")._value.get() == 2
        assert restarts.labels("core/*", "http_500")._value.get() == 2
    assert len(api.list_requests()) == 1
    timeouts = [r.timeout_seconds for r in api.watch_requests()]
    assert all(t is not None and 300 <= t < 600 for t in timeouts)


def test_served_object_bytes_are_the_line_s_object_exactly() -> None:
    from eventpipe.watch.watcher import served_object_bytes

    obj = b'{"kind":"Event","metadata":{"uid":"u","resourceVersion":"7"},"message":"a}b \\u003c"}'
    line = b'{"type":"MODIFIED","object":' + obj + b'}\n'
    assert served_object_bytes(line, "MODIFIED") == obj
    assert orjson.loads(served_object_bytes(line, "MODIFIED") or b"") == orjson.loads(obj)
    # Anything not in the API server's exact layout falls back to re-serialising.
    assert served_object_bytes(b'{"object":' + obj + b',"type":"ADDED"}', "ADDED") is None
    assert served_object_bytes(b'{"type": "ADDED", "object": ' + obj + b"}", "ADDED") is None
    assert served_object_bytes(b'{"type":"ADDED","object":' + obj + b"}", "MODIFIED") is None
    assert served_object_bytes(b'{"type":"ADDED","object":[1]}', "ADDED") is None


async def test_the_private_read_buffer_attribute_is_where_limit_read_buffer_sets_it(
        api: FakeApiServer, tmp_path: Path) -> None:
    # eventpipe.kube.client.limit_read_buffer writes aiohttp's private `_read_bufsize` on the
    # session kubernetes-asyncio keeps in `rest_client.pool_manager`, and skips it silently when
    # either is gone. This fails loudly instead when an upgrade of either library moves them.
    import aiohttp

    from eventpipe.kube.client import WATCH_READ_BUFSIZE, connect

    async with aiohttp.ClientSession(read_bufsize=12345) as session:
        assert session._read_bufsize == 12345, "aiohttp no longer stores read_bufsize there"
    api_client = await connect(str(tmp_path / "kubeconfig"))
    try:
        session = api_client.rest_client.pool_manager
        assert isinstance(session, aiohttp.ClientSession)
        assert session._read_bufsize == WATCH_READ_BUFSIZE
    finally:
        await api_client.close()


async def test_watch_responses_buffer_at_most_512_kib(api: FakeApiServer, tmp_path: Path) -> None:
    # kubernetes-asyncio's own session would buffer 4 MiB of unread stream (read_bufsize 2 MiB).
    from eventpipe.kube.client import WATCH_READ_BUFSIZE, connect
    from eventpipe.watch.api import KubeEventsApi

    api_client = await connect(str(tmp_path / "kubeconfig"))
    try:
        events = KubeEventsApi(api_client, api_group="core", namespace="")
        resp = await events.request(watch=True, resource_version="0", timeout_seconds=1)
        try:
            assert resp.content.get_read_buffer_limits() == (WATCH_READ_BUFSIZE,
                                                             2 * WATCH_READ_BUFSIZE)
        finally:
            resp.release()
    finally:
        await api_client.close()


async def test_a_watch_line_larger_than_the_read_buffer_arrives_whole(api: FakeApiServer,
                                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    big_message = "x" * 1_200_000  # > watch.readBufferSize and > twice the read buffer
    async with running(config):
        await api.wait_for_watchers()
        api.add({"metadata": {"name": "small-1", "namespace": "default"}, "reason": "A",
                 "involvedObject": {"kind": "Pod", "name": "p"}})
        api.add({"metadata": {"name": "big", "namespace": "default"}, "reason": "B",
                 "message": big_message, "involvedObject": {"kind": "Pod", "name": "p"}})
        api.add({"metadata": {"name": "small-2", "namespace": "default"}, "reason": "C",
                 "involvedObject": {"kind": "Pod", "name": "p"}})
        await wait_until(lambda: len(read_lines(out)) == 3, what="three events in the file")
    lines = read_lines(out)
    assert [e["metadata"]["name"] for e in lines] == ["small-1", "big", "small-2"]
    assert lines[1]["message"] == big_message
