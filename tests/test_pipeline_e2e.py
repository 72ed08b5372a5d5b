"""End to end: the fake API server → eventpipe (in-process) → file sink, through the real
kubernetes-asyncio client, a real SQLite spool and the real file receiver."""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.fakeapi.convert import to_events_v1
from tests.pipeline_harness import (
    corpus_files,
    read_lines,
    running,
    versions,
    wait_until,
    write_config,
)


def served_versions(api: FakeApiServer, view: str = "core") -> dict[tuple[str, str], Any]:
    """Every ADDED/MODIFIED version the server has emitted, as the watch served it."""
    out: dict[tuple[str, str], Any] = {}
    for change in api.store.changes_after(0, 10**9):
        if change.type in ("ADDED", "MODIFIED"):
            obj = change.obj if view == "core" else to_events_v1(change.obj)
            out[(change.uid, str(change.rv))] = orjson.loads(orjson.dumps(obj))
    return out


def event(name: str, *, namespace: str = "default", reason: str = "BackOff",
          count: int = 1) -> dict[str, Any]:
    return {
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": f"{name}.17a0", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
        "reason": reason, "type": "Warning", "message": f"{reason} on {name}",
        "count": count, "firstTimestamp": "2026-11-23T10:00:00Z",
        "lastTimestamp": "2026-11-23T10:00:00Z", "source": {"component": "kubelet"},
    }


async def test_every_corpus_event_round_trips_to_the_file(api: FakeApiServer,
                                                          tmp_path: Path) -> None:
    total = api.load_corpus(corpus_files())
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    expected = served_versions(api)
    async with running(config):
        # The initial LIST only holds each event's latest version; older corpus versions of the
        # same uid are history the list does not show.
        latest = {uid: obj for (uid, _), obj in expected.items()}
        await wait_until(lambda: len(read_lines(out)) >= len(latest), within=60,
                         what=f"{len(latest)} events in the file")
    lines = read_lines(out)
    assert total >= 5900
    assert len(lines) == len(latest)
    by_uid = {line["metadata"]["uid"]: line for line in lines}
    for uid, obj in latest.items():
        assert by_uid[uid] == obj, f"event {uid} changed on its way through"


async def test_watch_versions_and_merged_counts_are_each_delivered(api: FakeApiServer,
                                                                   tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        uid = api.add(event("web-1"))["metadata"]["uid"]
        for _ in range(9):
            api.bump_count(uid)
        await wait_until(lambda: len(read_lines(out)) == 10, what="10 versions")
        counts = [line["count"] for line in read_lines(out)]
        assert counts == list(range(1, 11))
        # The occurrence counter grows by each version's count delta: 10 in all.
        metric = pipeline.metrics.events._series[("default", "Pod", "web-1", "BackOff",
                                                  "Warning")]
        assert metric[0] == 10


async def test_restart_resumes_without_relist_or_duplicates(api: FakeApiServer,
                                                            tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    for i in range(50):
        api.add(event(f"a-{i}"))
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 50, what="first 50")
    lists_before = len(api.list_requests())
    saved_rv = str(api.resource_version)
    for i in range(30):
        api.add(event(f"b-{i}"))
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 80, what="80 lines")
    assert len(api.list_requests()) == lists_before, "a clean restart must not relist"
    assert api.watch_requests()[-1].resource_version == saved_rv
    seen = versions(read_lines(out))
    assert len(seen) == len(set(seen)) == 80


@pytest.mark.parametrize("mode", ["http", "stream"])
async def test_gone_relists_and_delivers_only_missing_versions(api: FakeApiServer,
                                                               tmp_path: Path,
                                                               mode: str) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    uids = [api.add(event(f"p-{i}"))["metadata"]["uid"] for i in range(20)]
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 20, what="first 20")
    # While eventpipe is down: new events, new versions, then the history is compacted.
    for uid in uids[:5]:
        api.bump_count(uid)
    for i in range(10):
        api.add(event(f"q-{i}"))
    api.compact()
    api.set_gone_mode(mode)
    lists_before = len(api.list_requests())
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 35, what="35 lines")
    assert len(api.list_requests()) == lists_before + 1
    seen = versions(read_lines(out))
    assert len(seen) == len(set(seen)) == 35  # 20 + 5 new versions + 10 new events
    latest = {(e.uid, str(e.rv)) for e in api.store.snapshot(api.resource_version, None)}
    assert latest <= set(seen)


async def test_gone_in_stream_while_running_relists(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    api.set_gone_mode("stream")
    api.disconnect_every(7)
    async with running(config):
        for i in range(40):
            api.add(event(f"r-{i}"))
        await wait_until(lambda: len(read_lines(out)) == 40, what="40 lines")
        api.compact()
        api.disconnect_all()
        for i in range(10):
            api.add(event(f"s-{i}"))
        await wait_until(lambda: len(read_lines(out)) == 50, what="50 lines")
    seen = versions(read_lines(out))
    assert len(seen) == len(set(seen)) == 50


async def test_disconnects_every_few_events_lose_nothing(api: FakeApiServer,
                                                         tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    api.disconnect_every(3)
    async with running(config):
        uids = [api.add(event(f"d-{i}"))["metadata"]["uid"] for i in range(100)]
        for uid in uids[:50]:
            api.bump_count(uid)
        await wait_until(lambda: len(read_lines(out)) == 150, what="150 versions")
    seen = versions(read_lines(out))
    assert len(seen) == len(set(seen)) == 150
    assert len(api.watch_requests()) > 30  # it really was cut over and over
    assert len(api.list_requests()) == 1  # and resumed without relisting


async def test_bookmark_moves_the_resume_point(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    api.add(event("x"))
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 1, what="one event")
        # Events in another view move the global resourceVersion without reaching this watch.
        api.store.compact(None)
        before = api.resource_version
        assert api.send_bookmark() == 1
        spool = await Spool.open(tmp_path / "spool.db")
        try:
            async def resume() -> str | None:
                return await spool.resume_point("core/*")
            expected = str(before)
            for _ in range(500):
                if await resume() == expected:
                    break
                await __import__("asyncio").sleep(0.02)
            assert await resume() == expected
        finally:
            await spool.close()


async def test_malformed_line_is_counted_and_the_stream_goes_on(api: FakeApiServer,
                                                                tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        api.add(event("before"))
        await wait_until(lambda: len(read_lines(out)) == 1, what="first event")
        api.inject_raw_line(b'{not json')
        api.inject_raw_line(b'{"type":"ADDED","object":{"kind":"Event","metadata":{}}}')
        api.add(event("after"))
        await wait_until(lambda: len(read_lines(out)) == 2, what="event after the bad lines")
        assert pipeline.metrics.watch_malformed.labels("core/*")._value.get() == 2
    db = sqlite3.connect(tmp_path / "spool.db")
    try:
        rejected = db.execute("SELECT observed_at, stream, line, error FROM rejected "
                              "ORDER BY id").fetchall()
    finally:
        db.close()
    assert [r[2][:9] for r in rejected] == [b"{not json", b'{"type":"']


BAD_TYPES = [
    b'{"type":{"a":1}}',
    b'{"type":{"a":1},"object":{"metadata":{"resourceVersion":"99999999"}}}',
    b'{"type":"WEIRD","object":{"metadata":{"resourceVersion":"99999999"}}}',
    b'{"type":7,"object":{"metadata":{"resourceVersion":"99999999"}}}',
    b'{"type":null,"object":{"metadata":{"resourceVersion":"99999999"}}}',
]


async def test_a_bad_or_unknown_type_is_a_rejected_line_and_keeps_the_resume_point(
        api: FakeApiServer, tmp_path: Path) -> None:
    """A `type` that is not a string must not crash the watch task; an unknown one must not
    move the resume point as a BOOKMARK would. Each is counted and kept raw."""
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"

    def rejected() -> list[tuple[bytes, str]]:
        with closing(sqlite3.connect(tmp_path / "spool.db")) as db:
            return db.execute("SELECT line, error FROM rejected ORDER BY id").fetchall()

    async with running(config) as pipeline:
        before = api.add(event("before"))["metadata"]["resourceVersion"]
        await wait_until(lambda: len(read_lines(out)) == 1, what="first event")
        for line in BAD_TYPES:
            api.inject_raw_line(line)
        await wait_until(lambda: len(rejected()) == len(BAD_TYPES), what="the rejected lines")
        assert [line for line, _ in rejected()] == BAD_TYPES
        assert "'WEIRD' is not one of ADDED, BOOKMARK" in rejected()[2][1]
        assert "of JSON type dict" in rejected()[1][1]
        assert pipeline.metrics.watch_malformed.labels("core/*")._value.get() == len(BAD_TYPES)
        spool = await Spool.open(tmp_path / "spool.db")
        try:
            assert await spool.resume_point("core/*") == before
        finally:
            await spool.close()
        api.add(event("after"))
        await wait_until(lambda: len(read_lines(out)) == 2, what="the event after the lines")
        assert len(api.watch_requests()) == 1, "the watch was cut or restarted"
    counted = {s.labels["type"] for m in pipeline.metrics.registry.collect()
               if m.name == "eventpipe_watch_events" for s in m.samples}
    assert counted <= {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"}, counted


async def test_namespaces_list_watches_each_namespace(api: FakeApiServer,
                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"namespace": "team-a", "watch": {"namespaces": ["team-b"]}})
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        assert sorted(w.stream for w in pipeline.watchers) == ["core/team-a", "core/team-b"]
        for ns in ("team-a", "team-b", "team-c"):
            api.add(event(f"n-{ns}", namespace=ns))
        await wait_until(lambda: len(read_lines(out)) == 2, what="two namespaces' events")
    assert Counter(e["metadata"]["namespace"] for e in read_lines(out)) == {
        "team-a": 1, "team-b": 1}


async def test_events_k8s_io_api_group(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"watch": {"apiGroup": "events.k8s.io"}})
    out = tmp_path / "events.jsonl"
    api.load_corpus(corpus_files()[:2])
    expected = served_versions(api, view="events")
    latest = {uid: obj for (uid, _), obj in expected.items()}
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == len(latest), what="all events")
    for line in read_lines(out):
        assert line["apiVersion"] == "events.k8s.io/v1"
        assert line == latest[line["metadata"]["uid"]]


async def test_max_event_age_skips_routing_but_still_spools(api: FakeApiServer,
                                                            tmp_path: Path) -> None:
    import datetime

    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"maxEventAgeSeconds": 600})
    out = tmp_path / "events.jsonl"
    fresh = event("fresh")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh["lastTimestamp"] = fresh["firstTimestamp"] = now
    async with running(config) as pipeline:
        stale = event("stale")
        stale["lastTimestamp"] = stale["firstTimestamp"] = "2020-01-01T00:00:00Z"
        api.add(stale)
        api.add(fresh)
        await wait_until(lambda: len(read_lines(out)) == 1, what="the fresh event")
        await wait_until(lambda: pipeline.workers[0].acked_seq == 2, what="both acked")
        assert pipeline.metrics.spool_events._value.get() == 2
    assert [e["involvedObject"]["name"] for e in read_lines(out)] == ["fresh"]


async def test_retention_deletes_only_what_every_receiver_acked(api: FakeApiServer,
                                                                tmp_path: Path) -> None:
    receivers = [{"name": "dump", "file": {"path": str(tmp_path / "events.jsonl")}},
                 {"name": "broken", "file": {"path": str(tmp_path / "blocked" / "x.jsonl")}}]
    (tmp_path / "blocked").mkdir()
    # A symlink to itself: opening fails (ELOOP) until it goes, an error `start` does not take
    # as a deployment mistake (a directory there would stop the run: docs/exit-codes.md).
    (tmp_path / "blocked" / "x.jsonl").symlink_to("x.jsonl")
    config = write_config(
        tmp_path, kubeconfig=tmp_path / "kubeconfig", receivers=receivers,
        route={"routes": [{"match": [{"receiver": "dump"}, {"receiver": "broken"}]}]},
        extra={"spool": {"path": str(tmp_path / "spool.db"), "historyWindow": "0s",
                         "retentionInterval": "100ms"}})
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        def spool_rows() -> float | None:
            return pipeline.metrics.registry.get_sample_value("eventpipe_spool_rows")
        for i in range(5):
            api.add(event(f"k-{i}"))
        await wait_until(lambda: len(read_lines(out)) == 5, what="dump has all")
        await wait_until(lambda: spool_rows() == 5,
                         what="retention ran")
        # `broken` never acked, so nothing may be deleted even with a zero history window.
        (tmp_path / "blocked" / "x.jsonl").unlink()
        await wait_until(lambda: len(read_lines(tmp_path / "blocked" / "x.jsonl")) == 5,
                         what="broken receiver recovered")
        await wait_until(lambda: spool_rows() == 0,
                         what="retention deleted what both acked")
