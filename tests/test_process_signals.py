"""The real `eventpipe run` process against the fake API server: killed with SIGKILL in the
middle of a burst it loses nothing and repeats at most the one unacked batch; stopped with
SIGTERM it exits 0 in time and repeats nothing."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    LineCounter,
    burst_events,
    child_processes,
    k8s_event,
    log_messages,
    read_lines,
    start_subprocess,
    versions,
    wait_for_exit,
    wait_started,
    wait_until,
    write_config,
)

BATCH = 500  # the file receiver's default batch.maxEvents


def served(api: FakeApiServer) -> set[tuple[str, str]]:
    """Every (uid, resourceVersion) the server emitted as ADDED or MODIFIED."""
    return {(c.uid, str(c.rv)) for c in api.store.changes_after(0, 10**9)
            if c.type in ("ADDED", "MODIFIED")}


async def spool_view(path: Path) -> tuple[str | None, int, dict[tuple[str, str], int]]:
    """(resume point of core/*, cursor of `dump`, (uid, rv) -> seq) of a stopped pipeline."""
    spool = await Spool.open(path)
    try:
        seqs: dict[tuple[str, str], int] = {}
        after = 0
        while rows := await spool.read_after(after, 5000):
            for row in rows:
                seqs[(row[1], row[2])] = row[0]
            after = rows[-1][0]
        return await spool.resume_point("core/*"), await spool.cursor("dump"), seqs
    finally:
        await spool.close()


async def test_sigkill_mid_burst_loses_nothing_and_repeats_one_batch_at_most(
        api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info"})
    out, log, log2 = (tmp_path / name for name in ("events.jsonl", "first.log", "second.log"))
    counter = LineCounter(out)
    async with child_processes() as procs:
        procs.append(first := await start_subprocess(config, log=log))
        await wait_started(first, log)
        await api.wait_for_watchers(1, within=20)
        lists_before = len(api.list_requests())
        total = api.add_many(burst_events(14_000, 6_000, prefix="k"))
        expected = served(api)
        assert total == len(expected) == 20_000
        await wait_until(lambda: counter.count() >= total // 5 or first.returncode is not None,
                         within=60, what="20% of the burst in the file")
        first.send_signal(signal.SIGKILL)
        assert await wait_for_exit(first, within=10) == -signal.SIGKILL
        at_kill = counter.count()
        assert total // 5 <= at_kill <= total * 4 // 5, f"killed too late: {at_kill} lines"

        saved_rv, acked, _ = await spool_view(tmp_path / "spool.db")
        assert saved_rv is not None
        watches_before = len(api.watch_requests())
        assert at_kill - BATCH <= acked <= at_kill, "file and cursor disagree"

        procs.append(second := await start_subprocess(config, log=log2))
        await wait_started(second, log2)
        repeated = at_kill - acked
        await wait_until(lambda: counter.count() >= total + repeated, within=60,
                         what="the rest of the burst after the restart")
        second.send_signal(signal.SIGTERM)
        assert await wait_for_exit(second, within=15) == 0

    # The restart resumed the watch from the saved resourceVersion: no relist.
    assert len(api.list_requests()) == lists_before
    assert api.watch_requests()[watches_before].resource_version == saved_rv
    lines = versions(read_lines(out))
    assert set(lines) == expected, "a served version is missing (or one was invented)"
    assert len(lines) == total + repeated
    assert max(Counter(lines).values()) <= 2
    # The repeats are exactly the batch in flight at the kill: the lines just before it, in
    # order, i.e. the contiguous seqs after the saved cursor.
    assert repeated <= BATCH
    assert lines[at_kill:at_kill + repeated] == lines[at_kill - repeated:at_kill]
    _, final_acked, seqs = await spool_view(tmp_path / "spool.db")
    assert [seqs[v] for v in lines[at_kill:at_kill + repeated]] == list(
        range(acked + 1, at_kill + 1))
    assert final_acked == max(seqs.values()) == total


async def test_sigterm_mid_burst_exits_0_in_time_and_repeats_nothing(
        api: FakeApiServer, tmp_path: Path) -> None:
    shutdown_timeout = 5.0
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info", "shutdownTimeout": "5s"})
    out, log, log2 = (tmp_path / name for name in ("events.jsonl", "first.log", "second.log"))
    counter = LineCounter(out)
    async with child_processes() as procs:
        procs.append(first := await start_subprocess(config, log=log))
        await wait_started(first, log)
        await api.wait_for_watchers(1, within=20)
        for i in range(30):
            api.add(k8s_event(f"t-{i}"))
        await wait_until(lambda: counter.count() == 30, what="30 events")
        api.add_many(burst_events(3000, 1000, prefix="u"))
        await wait_until(lambda: counter.count() > 30, what="the burst under way")
        started = time.monotonic()
        first.send_signal(signal.SIGTERM)
        assert await wait_for_exit(first, within=shutdown_timeout + 5) == 0
        assert time.monotonic() - started <= shutdown_timeout
        messages = log_messages(log)
        assert "shutting down" in messages
        assert "eventpipe stopped" in messages
        assert not any("deadline" in m for m in messages)
        # A clean stop acks everything it wrote: the cursor is exactly the file.
        at_stop = counter.count()
        _, acked, _ = await spool_view(tmp_path / "spool.db")
        assert acked == at_stop

        procs.append(second := await start_subprocess(config, log=log2))
        await wait_started(second, log2)
        await api.wait_for_watchers(1, within=20)
        for i in range(20):
            api.add(k8s_event(f"v-{i}"))
        expected = served(api)
        await wait_until(lambda: counter.count() >= len(expected), within=60,
                         what=f"{len(expected)} versions after the restart")
        second.send_signal(signal.SIGTERM)
        assert await wait_for_exit(second, within=shutdown_timeout + 5) == 0

    lines = versions(read_lines(out))
    assert len(lines) == len(set(lines)) == len(expected) == 4050
    assert set(lines) == expected
    assert len(api.list_requests()) == 1
