"""410 for real: eventpipe is stopped, events change, etcd is compacted past the resourceVersion
eventpipe saved; on restart the real API server answers 410 Gone, eventpipe relists, and the file
receiver ends with every version exactly once (the unchanged one is not delivered again), and
the spool records the gap: the refused resume point, the relist's resourceVersion, and the
occurrences a count jump shows were never seen as versions."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from eventpipe.spool.gaps import Gap
from tests.pipeline_harness import (
    child_processes,
    log_messages,
    read_lines,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane


async def compact_etcd(kube: ControlPlane) -> int:
    """Compact etcd to its current revision through its JSON gateway; the revision."""
    base = f"http://127.0.0.1:{kube.etcd_port}/v3/kv"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/range", json={
                "key": base64.b64encode(b"/").decode()}) as resp:
            revision = int((await resp.json())["header"]["revision"])
        async with session.post(f"{base}/compaction",
                                json={"revision": revision, "physical": True}) as resp:
            assert resp.status == 200, await resp.text()
    return revision


def event(namespace: str, name: str) -> str:
    """An Event manifest for kubectl."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
        "reason": "Test", "message": name, "type": "Normal", "count": 1})


def mine(path: Path, namespace: str) -> list[tuple[str, str]]:
    """(name, resourceVersion) of the namespace's delivered events, in file order."""
    lines: list[dict[str, Any]] = read_lines(path)
    return [(e["metadata"]["name"], e["metadata"]["resourceVersion"]) for e in lines
            if e["metadata"]["namespace"] == namespace]


async def test_relist_after_compaction_delivers_nothing_twice(kube: ControlPlane,
                                                              tmp_path: Path) -> None:
    namespace = f"gone-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    # Only this namespace: the gap's counts must not include other tests' events (the
    # scheduler keeps retrying their pods while eventpipe is stopped).
    config = write_config(tmp_path, kubeconfig=kube.admin_kubeconfig,
                          extra={"namespace": namespace})
    sink = tmp_path / "events.jsonl"
    log = tmp_path / "eventpipe.log"

    async def versions_now() -> set[tuple[str, str]]:
        out = json.loads(await asyncio.to_thread(kube.kubectl, "-n", namespace, "get",
                                                 "events", "-o", "json"))
        return {(e["metadata"]["name"], e["metadata"]["resourceVersion"]) for e in out["items"]}

    async with child_processes() as procs:
        procs.append(await start_subprocess(config, log=log))
        await wait_started(procs[0], log, within=60)
        for name in ("kept", "changed", "jumped"):
            await asyncio.to_thread(kube.kubectl, "create", "-f", "-",
                                    input_text=event(namespace, name))
        before = await versions_now()
        await wait_until(lambda: before <= set(mine(sink, namespace)), within=60,
                         what="the first versions delivered")
        procs[0].send_signal(signal.SIGTERM)
        assert await wait_for_exit(procs[0], within=30) == 0
        saved_rv = resume_point(tmp_path / "spool.db", f"core/{namespace}")

        await asyncio.to_thread(kube.kubectl, "-n", namespace, "patch", "event", "changed",
                                "--type=merge", "-p", '{"count": 2}')
        await asyncio.to_thread(kube.kubectl, "-n", namespace, "patch", "event", "jumped",
                                "--type=merge", "-p", '{"count": 5}')  # 2, 3, 4 never seen
        await asyncio.to_thread(kube.kubectl, "create", "-f", "-",
                                input_text=event(namespace, "new"))
        await compact_etcd(kube)
        after = await versions_now()

        procs.append(await start_subprocess(config, log=log))
        await wait_until(lambda: after <= set(mine(sink, namespace)), within=60,
                         what="the versions made while stopped")
        assert "resume point expired, relisting" in log_messages(log)
    delivered = mine(sink, namespace)
    assert sorted(delivered) == sorted(before | after)
    assert len(delivered) == len(set(delivered)), "a version delivered twice"
    (gap,) = gaps(tmp_path / "spool.db")
    assert (gap.stream, gap.namespace) == (f"core/{namespace}", namespace)
    assert gap.from_resource_version == saved_rv
    assert int(gap.to_resource_version) > int(saved_rv)
    assert gap.relisted_versions == 3  # changed, jumped, new
    assert gap.occurrences_missed == 3


def resume_point(spool: Path, stream: str) -> str:
    """The resume point eventpipe saved for `stream`."""
    with sqlite3.connect(spool) as db:
        row = db.execute("SELECT resource_version FROM watch_state WHERE stream = ?",
                         (stream,)).fetchone()
    db.close()
    return str(row[0])


def gaps(spool: Path) -> list[Gap]:
    """Every gap the spool recorded."""
    with sqlite3.connect(spool) as db:
        found = [Gap(*row) for row in db.execute(f"SELECT {', '.join(Gap._fields)} FROM gaps")]
    db.close()
    return found
