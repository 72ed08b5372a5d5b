"""Shutdown with a receiver that sends one request per event: what it confirmed before the
deadline is acked, so the restart sends only the rest (real processes, a real HTTP server
counting what arrived)."""

from __future__ import annotations

import collections
import signal
from pathlib import Path

from tests.fakeapi import FakeApiServer
from tests.fakes.webhook import WebhookReceiver
from tests.pipeline_harness import (
    child_processes,
    k8s_event,
    log_messages,
    start_subprocess,
    wait_for_exit,
    wait_started,
    write_config,
)

EVENTS = 60


async def test_a_shutdown_acks_what_the_receiver_confirmed_before_the_deadline(
        api: FakeApiServer, tmp_path: Path) -> None:
    log = tmp_path / "eventpipe.log"
    async with WebhookReceiver() as hook, child_processes() as procs:
        hook.delay = 0.2  # one request per event, 0.2 s each: a batch takes 12 s
        config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={
            "logLevel": "info", "shutdownTimeout": "5s"},
            receivers=[{"name": "hook", "webhook": {"endpoint": hook.url()}}],
            route={"routes": [{"match": [{"receiver": "hook"}]}]})
        procs.append(proc := await start_subprocess(config, log=log))
        await wait_started(proc, log)
        await api.wait_for_watchers(1, within=20)
        api.add_many([k8s_event(f"slow-{i}") for i in range(EVENTS)])
        await hook.wait_for(lambda h: len(h.accepted) >= 10, within=60,
                            what="the first events sent")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=20) == 0
        before_restart = len(hook.accepted)
        assert before_restart < EVENTS, "the batch was still in flight at the stop"
        procs.append(again := await start_subprocess(config, log=log))
        await wait_started(again, log)
        await hook.wait_for(lambda h: len({r.body for r in h.accepted}) >= EVENTS, within=90,
                            what="the rest sent after the restart")
        again.send_signal(signal.SIGTERM)
        assert await wait_for_exit(again, within=20) == 0

    sent = collections.Counter(r.body for r in hook.accepted)
    assert len(sent) == EVENTS
    repeated = sum(n - 1 for n in sent.values())
    assert repeated == 0, f"{repeated} events confirmed before the stop were sent again"
    assert "shutdown deadline hit; unfinished batches repeat on restart" not in log_messages(log)
