"""Loss accounting against the fake API server: a relist after 410 records a gap (stream,
resourceVersion range, occurrences missed by count), counts it in the metrics, and shows it in
`eventpipe spool stats` and `eventpipe events --versions`; a spool of schema version 1 is
migrated. The real API server's version is tests/realkube/test_expired_resume.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from eventpipe.history import Filters, show
from eventpipe.spool import Spool
from eventpipe.spool.gaps import Gap, read_gaps
from eventpipe.spool.report import render_stats, spool_stats_for
from eventpipe.spool.schema import SCHEMA_VERSION
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import read_lines, running, wait_until, write_config
from tests.test_pipeline_e2e import event


async def stored_gaps(path: Path) -> list[Gap]:
    spool = await Spool.open(path)
    try:
        return await read_gaps(spool._reader)
    finally:
        await spool.close()


async def test_gone_while_stopped_records_the_gap(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    jumped = api.add(event("jumped"))["metadata"]["uid"]
    stepped = api.add(event("stepped"))["metadata"]["uid"]
    api.add(event("quiet"))
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 3, what="3 events")
    saved_rv = str(api.resource_version)
    for _ in range(4):  # count 1 → 5 while stopped: versions 2, 3, 4 are never seen
        api.bump_count(jumped)
    api.bump_count(stepped)  # 1 → 2: nothing missed
    api.add(event("born", count=3))  # first seen at 3: occurrences 1 and 2 missed
    api.compact()
    async with running(config) as pipeline:
        await wait_until(lambda: len(read_lines(out)) == 6, what="the relisted versions")
        metrics = pipeline.metrics.registry
        # The gap is recorded once the relist is stored; its versions may be delivered first.
        await wait_until(lambda: metrics.get_sample_value(
            "eventpipe_watch_gaps_total", {"stream": "core/*"}) is not None, what="the gap")
        assert metrics.get_sample_value("eventpipe_watch_gaps_total",
                                        {"stream": "core/*"}) == 1
        assert metrics.get_sample_value("eventpipe_occurrences_missed_total",
                                        {"stream": "core/*"}) == 5
    (gap,) = await stored_gaps(tmp_path / "spool.db")
    assert (gap.stream, gap.namespace, gap.from_resource_version) == ("core/*", "", saved_rv)
    assert int(gap.to_resource_version) >= int(saved_rv) + 6
    assert (gap.after_seq, gap.until_seq) == (3, 6)
    assert (gap.relisted_versions, gap.occurrences_missed) == (3, 5)

    stats = await spool_stats_for(config=None, path=str(tmp_path / "spool.db"))
    assert (stats["gaps"], stats["occurrences_missed"]) == (1, 5)
    report = render_stats(stats)
    assert "watch gaps:   1 (5 occurrences missed by count)" in report
    assert f"resourceVersions {saved_rv}..{gap.to_resource_version} not watched" in report


async def test_events_versions_shows_the_gap_where_it_falls(api: FakeApiServer,
                                                            tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    uid = api.add(event("web"))["metadata"]["uid"]
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 1, what="the first version")
    for _ in range(3):
        api.bump_count(uid)
    api.compact()
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 2, what="the relisted version")
        api.bump_count(uid)
        await wait_until(lambda: len(read_lines(out)) == 3, what="a watched version")
    lines: list[str] = []
    notes: list[str] = []
    filters = Filters(kind="Pod", name="web")
    await show(tmp_path / "spool.db", filters, versions=True, output="wide",
               echo=lines.append, note=notes.append)
    table = lines[0].split("\n")
    assert [line.split()[-1] for line in table if not line.startswith("---")] == [
        "COUNT", "1", "4", "5"]
    assert table[2].startswith("--- gap in core/*: resourceVersions ")
    assert "(relisted: 1 versions, 2 occurrences missed by count) ---" in table[2]
    assert notes == []

    lines.clear()
    await show(tmp_path / "spool.db", filters, versions=True, output="json",
               echo=lines.append, note=notes.append)
    assert [e["count"] for e in orjson.loads(lines[0])["items"]] == [1, 4, 5]
    assert len(notes) == 1 and notes[0].startswith("--- gap in core/*")

    # Streamed (`--limit 0`): the same line in the same place, and one note for json.
    lines.clear()
    await show(tmp_path / "spool.db", filters, versions=True, output="wide", limit=None,
               echo=lines.append, note=notes.append)
    assert "\n".join(lines).split("\n") == table
    notes.clear()
    lines.clear()
    await show(tmp_path / "spool.db", filters, versions=True, output="json", limit=None,
               echo=lines.append, note=notes.append)
    assert [e["count"] for e in orjson.loads("\n".join(lines))["items"]] == [1, 4, 5]
    assert len(notes) == 1 and notes[0].startswith("--- gap in core/*")

    lines.clear()
    await show(tmp_path / "spool.db", filters, versions=False, output="wide",
               echo=lines.append, note=notes.append)
    assert not any(line.startswith("---") for line in lines[0].split("\n"))


async def test_a_clean_restart_records_no_gap(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    api.add(event("a"))
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) == 1, what="one event")
    api.add(event("b"))
    async with running(config) as pipeline:
        await wait_until(lambda: len(read_lines(out)) == 2, what="two events")
        assert pipeline.metrics.registry.get_sample_value(
            "eventpipe_watch_gaps_total", {"stream": "core/*"}) in (None, 0)
    assert await stored_gaps(tmp_path / "spool.db") == []


async def test_gone_in_stream_while_running_records_a_gap(api: FakeApiServer,
                                                          tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"namespace": "team-a"})
    out = tmp_path / "events.jsonl"
    api.set_gone_mode("stream")
    async with running(config):
        api.add(event("x", namespace="team-a"))
        await wait_until(lambda: len(read_lines(out)) == 1, what="one event")
        api.add(event("y", namespace="team-a", count=4))
        api.add(event("other", namespace="team-b", count=9))
        api.compact()
        api.disconnect_all()
        await wait_until(lambda: len(read_lines(out)) == 2, what="the relisted event")
    (gap,) = await stored_gaps(tmp_path / "spool.db")
    assert (gap.stream, gap.namespace) == ("core/team-a", "team-a")
    assert (gap.relisted_versions, gap.occurrences_missed) == (1, 3)


async def test_a_version_1_spool_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = await Spool.open(path)
    await spool.close()
    with sqlite3.connect(path) as db:  # the file as the previous release left it
        db.execute("DROP TABLE gaps")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    lines: list[str] = []
    # Read-only history on the unmigrated file: no gaps table, no gaps, no error.
    assert await show(path, Filters(), versions=True, echo=lines.append) == 0
    spool = await Spool.open(path)
    await spool.close()
    with sqlite3.connect(path) as db:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert version == (str(SCHEMA_VERSION),)
    assert "gaps" in tables
