"""Leader election on a real coordination.k8s.io/v1 Lease: two `eventpipe run` processes, only
the holder sends; after kill -9 of the holder the other takes the Lease within leaseDuration
(plus the retry periods it takes to notice), and every version a raw watch saw is in one file
or the other."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from tests.pipeline_harness import (
    child_processes,
    read_lines,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import keys, watch

LEASE = "eventpipe-ha"
DURATION, RETRY = 3.0, 0.5


def replica(tmp_path: Path, kube: ControlPlane, namespace: str, identity: str) -> Path:
    """The config of one replica, with its own spool and file receiver."""
    home = tmp_path / identity
    home.mkdir()
    return write_config(home, kubeconfig=kube.admin_kubeconfig, extra={
        "logLevel": "info",
        "leaderElection": {"enabled": True, "leaderElectionID": LEASE, "namespace": namespace,
                           "identity": identity, "leaseDuration": f"{DURATION}s",
                           "renewDeadline": "2s", "retryPeriod": f"{RETRY}s"}})


def holder(kube: ControlPlane, namespace: str) -> str:
    """The Lease's holderIdentity ('' when there is no Lease yet)."""
    out = kube.kubectl("-n", namespace, "get", "leases", "-o", "json")
    for lease in json.loads(out)["items"]:
        if lease["metadata"]["name"] == LEASE:
            return str(lease["spec"].get("holderIdentity") or "")
    return ""


async def test_standby_takes_over_the_real_lease_after_sigkill(kube: ControlPlane,
                                                              tmp_path: Path) -> None:
    namespace = f"lease-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready))
    file_a, file_b = tmp_path / "a" / "events.jsonl", tmp_path / "b" / "events.jsonl"

    async def create(prefix: str, n: int) -> None:
        items = [{"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": f"{prefix}-{i}", "namespace": namespace},
                  "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
                  "reason": "Test", "message": prefix, "type": "Normal"} for i in range(n)]
        await asyncio.to_thread(kube.kubectl, "create", "-f", "-", input_text=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items}))

    async with child_processes() as procs:
        await asyncio.wait_for(ready.wait(), 30)
        a = await start_subprocess(replica(tmp_path, kube, namespace, "a"),
                                   log=tmp_path / "a.log")
        procs.append(a)
        await wait_started(a, tmp_path / "a.log", within=60)
        await wait_until(lambda: holder(kube, namespace) == "a", within=30, what="a leads")
        b = await start_subprocess(replica(tmp_path, kube, namespace, "b"),
                                   log=tmp_path / "b.log")
        procs.append(b)
        await wait_started(b, tmp_path / "b.log", within=60)

        await create("first", 10)
        await wait_until(lambda: len(keys(read_lines(file_a), namespace)) == 10, within=60,
                         what="a sends the first 10")
        assert keys(read_lines(file_b), namespace) == set(), "the standby sent"

        a.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert await wait_for_exit(a, within=10) == -signal.SIGKILL
        await create("orphan", 10)
        await wait_until(lambda: holder(kube, namespace) == "b", within=DURATION + 10,
                         what="b takes the Lease")
        takeover = time.monotonic() - killed
        assert takeover <= DURATION + 2 * RETRY + 2.0, takeover
        await wait_until(lambda: len(keys(seen, namespace)) == 20, within=30,
                         what="the raw watch sees all 20")
        expected = keys(seen, namespace)
        await wait_until(lambda: keys(read_lines(file_a) + read_lines(file_b), namespace)
                         >= expected, within=60, what="every version in one file or the other")
    watcher.cancel()
    assert keys(read_lines(file_a) + read_lines(file_b), namespace) == expected
