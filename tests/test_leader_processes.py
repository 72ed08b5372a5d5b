"""Two real `eventpipe run` processes, each with its own spool and file receiver, compete for one
Lease on the fake API server: only the holder sends; killed with SIGKILL, it is replaced within
leaseDuration (plus the retry period it takes to notice), and no Event version the server
emitted is missing from the union of both files (at-least-once across replicas)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    child_processes,
    http_get,
    k8s_event,
    read_lines,
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

LEASE = "eventpipe-ha"
DURATION, RETRY = 3.0, 0.5


def served(api: FakeApiServer) -> set[tuple[str, str]]:
    """Every (uid, resourceVersion) the server emitted as ADDED or MODIFIED."""
    return {(c.uid, str(c.rv)) for c in api.store.changes_after(0, 10**9)
            if c.type in ("ADDED", "MODIFIED")}


def replica(tmp_path: Path, identity: str) -> Path:
    home = tmp_path / identity
    home.mkdir()
    return write_config(home, kubeconfig=tmp_path / "kubeconfig", extra={
        "logLevel": "info",
        "leaderElection": {"enabled": True, "leaderElectionID": LEASE, "namespace": "default",
                           "identity": identity, "leaseDuration": f"{DURATION}s",
                           "renewDeadline": "2s", "retryPeriod": f"{RETRY}s"}})


async def test_one_leader_sends_and_a_standby_takes_over_after_sigkill_losing_nothing(
        api: FakeApiServer, tmp_path: Path) -> None:
    file_a, file_b = tmp_path / "a" / "events.jsonl", tmp_path / "b" / "events.jsonl"
    config_a, config_b = replica(tmp_path, "a"), replica(tmp_path, "b")
    async with child_processes() as procs:
        procs.append(a := await start_subprocess(config_a, log=tmp_path / "a.log"))
        port_a = await wait_started(a, tmp_path / "a.log")
        await api.wait_for(lambda: api.leases.holder(LEASE) == "a", within=20)
        await api.wait_for_watchers(1, within=20)
        procs.append(b := await start_subprocess(config_b, log=tmp_path / "b.log"))
        port_b = await wait_started(b, tmp_path / "b.log")

        async def b_sees_a() -> bool:
            code, body = await http_get(port_b, "/readyz")
            ready = json.loads(body)
            return code == 200 and ready["leader"] == "standby" and ready["holder"] == "a"
        await wait_until_async(b_sees_a, within=10, what="b standing by behind a (and ready)")
        assert sample_values(await scrape(port_b), "eventpipe_leader") == [0.0]
        assert sample_values(await scrape(port_a), "eventpipe_leader") == [1.0]

        for i in range(30):
            api.add(k8s_event(f"first-{i}"))
        await wait_until(lambda: len(read_lines(file_a)) == 30, what="a sends the first 30")
        assert read_lines(file_b) == [], "the standby sent"
        assert len(api.streams) == 1, "the standby watches"

        for i in range(20):  # a may or may not deliver these before it dies
            api.add(k8s_event(f"racing-{i}"))
        a.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert await wait_for_exit(a, within=10) == -signal.SIGKILL
        for i in range(20):  # no leader while these arrive
            api.add(k8s_event(f"orphan-{i}"))

        await api.wait_for(lambda: api.leases.holder(LEASE) == "b", within=DURATION + 5)
        takeover = time.monotonic() - killed
        # b may take over only after DURATION without a change it saw (a's last renewal was at
        # most RETRY before the kill), and notices expiry within two retry periods after.
        assert DURATION - RETRY - 0.1 <= takeover <= DURATION + 2 * RETRY + 0.5, takeover
        assert api.leases.get(LEASE, "default")["spec"]["leaseTransitions"] == 1  # type: ignore[index]

        expected = served(api)
        assert len(expected) == 70
        await wait_until(lambda: set(versions(read_lines(file_a) + read_lines(file_b)))
                         >= expected, within=20, what="every version in one file or the other")
        assert sample_values(await scrape(port_b), "eventpipe_leader") == [1.0]
        b.send_signal(signal.SIGTERM)
        assert await wait_for_exit(b, within=15) == 0

    union = versions(read_lines(file_a) + read_lines(file_b))
    assert set(union) == expected
    assert len(versions(read_lines(file_a))) == len(set(versions(read_lines(file_a))))
    assert api.leases.holder(LEASE) == "", "b released the Lease on SIGTERM"
