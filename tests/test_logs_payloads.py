"""No payloads in logs at any level: a real `eventpipe run` at `logLevel: debug` (and the
libraries asked for debug too) stores and delivers events, and nothing of their bodies reaches
the log; the libraries stay at warning unless asked."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest

from eventpipe.logs import setup_logging
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    child_processes,
    k8s_event,
    log_records,
    read_lines,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until,
    write_config,
)

SECRET = "payload-marker-7f3a9c"


@pytest.mark.parametrize("dependencies", ["warn", "debug"])
async def test_debug_logs_hold_no_event_body(api: FakeApiServer, tmp_path: Path,
                                             dependencies: str) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "debug", "dependencyLogLevel": dependencies})
    log = tmp_path / "eventpipe.log"
    for i in range(5):  # served by the first LIST, the rest by the watch
        api.add(k8s_event(f"listed-{i}", message=f"{SECRET} listed {i}"))
    # Enrichment looks this Pod up: its annotations must not reach the log either.
    api.objects.add("Pod", "web-0", annotations={"note": SECRET})
    async with child_processes() as procs:
        proc = await start_subprocess(config, log=log)
        procs.append(proc)
        await wait_started(proc, log)
        for i in range(20):
            api.add(k8s_event(f"web-{i}", message=f"{SECRET} {'x' * 2000} {i}"))
        api.inject_raw_line(f'{{"type":"WEIRD","object":{{"message":"{SECRET}"}}}}'.encode())
        await wait_until(lambda: len(read_lines(tmp_path / "events.jsonl")) == 25,
                         what="25 events delivered")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=30) == 0
    text = log.read_text(errors="replace")
    assert SECRET not in text, [line[:300] for line in text.splitlines() if SECRET in line]
    records = log_records(log)
    if dependencies == "debug":  # the libraries did log at debug, and still no payload
        assert any(r["level"] == "debug" and not r["logger"].startswith("eventpipe")
                   for r in records)
    assert not any(r["logger"].startswith(("aiosqlite", "kubernetes_asyncio.client.rest"))
                   for r in records)


def test_libraries_stay_at_warning_unless_asked() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("eventpipe").level
    try:
        setup_logging("debug", "json")
        assert logging.getLogger("eventpipe.watcher").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("kubernetes_asyncio.rest").isEnabledFor(logging.INFO)
        assert not logging.getLogger("aiohttp.client").isEnabledFor(logging.INFO)
        setup_logging("info", "json", dependencies="debug")
        assert logging.getLogger("aiohttp.client").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("eventpipe.app").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], level, own = saved
        root.setLevel(level)
        logging.getLogger("eventpipe").setLevel(own)
        logging.getLogger("aiosqlite").setLevel(logging.NOTSET)
