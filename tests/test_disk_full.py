"""A real disk-full episode under `eventpipe run`: the spool on a small tmpfs
(tests/volumes.py) that the test fills to the last byte while events keep coming and a slow
receiver is still behind, then empties again.

What must hold: every event reaches each receiver exactly once (the spool's reserve lets the
acks commit; a failed one would be retried without re-sending the batch), what was stored
keeps being delivered while the disk is full, the log has no traceback, the metrics and the
log say the spool was full, `/readyz` says the spool cannot store while it cannot, and
delivery resumes by itself once space returns.
"""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path
from typing import Any

import orjson

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.fakes.webhook import WebhookReceiver
from tests.pipeline_harness import (
    LineCounter,
    child_processes,
    http_get,
    k8s_event,
    log_records,
    read_lines,
    run_cli,
    running,
    sample_values,
    scrape,
    start_subprocess,
    versions,
    wait_for_exit,
    wait_started,
    wait_until,
    wait_until_async,
    write_config,
)
from tests.volumes import fill, release, small_volume

BODY = 2_000  # message bytes
BEFORE, DURING = 2_000, 2_000
MORE = 10_000
"""Events that arrive on the full 20 MiB volume under dropOldest: ~23 MB, more than it holds."""


def events(prefix: str, n: int) -> list[dict[str, Any]]:
    return [k8s_event(f"{prefix}-{i}", message=prefix[0] * BODY) for i in range(n)]


def hook_versions(hook: WebhookReceiver) -> list[tuple[str, str]]:
    return [(e["metadata"]["uid"], e["metadata"]["resourceVersion"])
            for e in hook.json_items()]


async def test_a_full_disk_delays_delivery_but_never_duplicates_it(api: FakeApiServer,
                                                                   tmp_path: Path) -> None:
    out, log = tmp_path / "events.jsonl", tmp_path / "eventpipe.log"
    # 20 MiB: the events and the WAL leave less than the 8 MiB appends needed to resume
    # before the threshold scaled with the volume (5 MiB here, eventpipe.spool.reserve).
    with small_volume(tmp_path / "vol", mib=20) as volume:
        async with WebhookReceiver() as hook, child_processes() as procs:
            hook.delay = 0.05  # 50 events a request: the hook lags behind the watch
            config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={
                "logLevel": "info", "spool": {"path": str(volume / "spool.db"),
                                              "whenFull": "block", "retentionInterval": "1s"}},
                receivers=[
                    {"name": "dump", "file": {"path": str(out)}},
                    {"name": "hook", "webhook": {"endpoint": hook.url(), "batch": True},
                     "batch": {"maxEvents": 50}}],
                route={"routes": [{"match": [{"receiver": "dump"}, {"receiver": "hook"}]}]})
            procs.append(proc := await start_subprocess(config, log=log))
            port = await wait_started(proc, log)
            await api.wait_for_watchers(1, within=20)
            api.add_many(events("before", BEFORE))

            async def stored(n: int) -> bool:
                return sum(sample_values(await scrape(port), "eventpipe_spool_events_total")
                           ) >= n
            await wait_until_async(lambda: stored(BEFORE), within=60, what="the first events")
            fill(volume)
            api.add_many(events("during", DURING))

            async def full() -> bool:
                return sum(sample_values(await scrape(port), "eventpipe_spool_full_total")) > 0
            await wait_until_async(full, within=60, what="the spool reporting itself full")
            status, body = await http_get(port, "/readyz")
            assert status == 503 and orjson.loads(body)["spool_writable"] is False, body
            # What was stored before keeps flowing: the spool's reserve gives the acks room.
            await hook.wait_for(lambda h: len(h.json_items()) >= BEFORE, within=120,
                                what="the hook sending through the full disk")
            release(volume)
            total = BEFORE + DURING
            delivered = LineCounter(out)
            await wait_until(lambda: delivered.count() >= total, within=120,
                             what="delivery resuming once space returned")
            await hook.wait_for(lambda h: len(set(hook_versions(h))) >= total, within=120,
                                what="the hook catching up")

            async def ready() -> bool:
                return (await http_get(port, "/readyz"))[0] == 200
            await wait_until_async(ready, within=30, what="/readyz 200 again")
            samples = await scrape(port)
            proc.send_signal(signal.SIGTERM)
            assert await wait_for_exit(proc, within=30) == 0
            spool_files = {p.name: p.stat().st_size for p in volume.iterdir()}

    for name, got in (("dump", versions(read_lines(out))), ("hook", hook_versions(hook))):
        seen = collections.Counter(got)
        assert len(seen) == BEFORE + DURING, name
        again = sum(n - 1 for n in seen.values())
        assert again == 0, f"{name}: {again} repeated deliveries"
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]
    assert sample_values(samples, "eventpipe_spool_full_total")[0] > 0
    assert any(r["msg"].startswith("spool full") for r in log_records(log))
    assert "spool.db" in spool_files, os.fspath(volume)


async def test_starting_on_a_full_disk_is_one_line_naming_the_spool(
        api: FakeApiServer, tmp_path: Path) -> None:
    with small_volume(tmp_path / "vol", mib=4) as volume:
        spool = volume / "spool.db"
        await (await Spool.open(spool)).close()  # a spool from an earlier run
        fill(volume)
        config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={
            "logLevel": "info", "spool": {"path": str(spool)}})
        done = await run_cli("run", "--config", str(config), within=60)
    assert done.code == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [orjson.loads(line) for line in done.stderr.splitlines()
              if line.startswith("{") and orjson.loads(line)["level"] == "error"]
    assert len(errors) == 1, done.stderr
    assert str(spool) in errors[0]["msg"] and "full" in errors[0]["msg"], errors[0]


async def test_spool_rows_counts_what_is_stored_at_once(api: FakeApiServer,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info"})  # retentionInterval: the default 60 s
    async with running(config) as pipeline:
        api.add_many([k8s_event(f"counted-{i}") for i in range(40)])
        await wait_until(lambda: len(read_lines(out)) >= 40, what="40 events delivered")
        rows = pipeline.metrics.registry.get_sample_value("eventpipe_spool_rows")
    assert rows == 40


def last_line_name(path: Path) -> str:
    """metadata.name of the last whole line of a file sink ("" before the first)."""
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4 * BODY))
        data = handle.read()
    complete = data[:data.rfind(b"\n")]  # the receiver may be in the middle of a line
    tail = complete.rsplit(b"\n", 1)[-1]
    return str(orjson.loads(tail)["metadata"]["name"]) if tail.startswith(b"{") else ""


async def test_drop_oldest_on_a_full_disk_keeps_storing_more_than_the_disk_holds(
        api: FakeApiServer, tmp_path: Path) -> None:
    out, log = tmp_path / "events.jsonl", tmp_path / "eventpipe.log"
    with small_volume(tmp_path / "vol", mib=20) as volume:
        config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={
            "logLevel": "info", "spool": {"path": str(volume / "spool.db"),
                                          "whenFull": "dropOldest"}})
        async with child_processes() as procs:
            procs.append(proc := await start_subprocess(config, log=log))
            port = await wait_started(proc, log)
            await api.wait_for_watchers(1, within=20)
            api.add_many(events("before", BEFORE))
            delivered = LineCounter(out)
            await wait_until(lambda: delivered.count() >= BEFORE, within=60,
                             what="the first events delivered")
            fill(volume)
            burst = events("during", MORE)
            api.add_many(burst)
            # Still full: dropping the oldest events makes the room, again and again, for
            # more than the whole volume holds; the newest is stored and delivered.
            newest = burst[-1]["metadata"]["name"]
            await wait_until(lambda: last_line_name(out) == newest, within=120,
                             what="the newest event stored and delivered on the full disk")
            status, body = await http_get(port, "/readyz")
            samples = await scrape(port)
            proc.send_signal(signal.SIGTERM)
            assert await wait_for_exit(proc, within=30) == 0

    seen = collections.Counter(versions(read_lines(out)))
    assert max(seen.values()) == 1, "an event delivered twice"
    dropped = sum(sample_values(samples, "eventpipe_spool_dropped_total", reason="budget"))
    # The disk holds ~2,300 of these events: most of the burst is dropped, and each event
    # was either delivered or counted as dropped.
    assert dropped >= MORE - 2_500 and len(seen) + dropped >= BEFORE + MORE, (len(seen),
                                                                            dropped)
    assert status == 200, body  # dropping keeps the spool writable
    assert "Traceback" not in log.read_text(errors="replace")
