"""resmo's command line (`kubernetes-event-exporter -conf=/data/config.yaml`) runs eventpipe:
a Deployment manifest only needs a new image. Real process, real fake API server."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("form", ["equals", "separate"])
async def test_conf_flag_starts_and_delivers(api: FakeApiServer, tmp_path: Path,
                                             form: str) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info"})
    argv = [f"-conf={config}"] if form == "equals" else ["-conf", str(config)]
    # resmo's -metrics-address comes along too: port 0 here, so the bound port is logged.
    argv += ["-metrics-address=127.0.0.1:0"]
    out, log = tmp_path / "events.jsonl", tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(proc := await start_subprocess(config, log=log, argv=argv))
        await wait_started(proc, log)
        await api.wait_for_watchers(1, within=20)
        uid = api.add(k8s_event("resmo-user"))["metadata"]["uid"]
        await wait_until(lambda: len(read_lines(out)) == 1, what="the first event")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0
    assert [line["metadata"]["uid"] for line in read_lines(out)] == [uid]
    started = next(r for r in log_records(log) if r["msg"] == "eventpipe started")
    assert started["receivers"] == ["dump"]
    assert started["spool"] == str(tmp_path / "spool.db")
