"""Events written the way kubelet writes them (create, then PATCH count and lastTimestamp),
against the real API server: every version an independent raw HTTP watch saw reaches the file
receiver of an `eventpipe run` subprocess, with count deltas of one, and nothing else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.pipeline_harness import (
    child_processes,
    read_lines,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import admin_ssl, start_watching, watch

COUNT = 50


def now() -> str:
    """The API's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_patched_count_versions_all_arrive(kube: ControlPlane, tmp_path: Path) -> None:
    namespace = f"kubelet-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    config = write_config(tmp_path, kubeconfig=kube.admin_kubeconfig)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready))
    async with child_processes() as procs:
        procs.append(await start_watching(config, tmp_path / "eventpipe.log"))
        await asyncio.wait_for(ready.wait(), 30)
        url = f"{kube.server}/api/v1/namespaces/{namespace}/events"
        async with aiohttp.ClientSession() as session:
            body = {"metadata": {"name": "web-0.backoff", "namespace": namespace},
                    "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": namespace},
                    "reason": "BackOff", "message": "Back-off restarting failed container",
                    "type": "Warning", "count": 1, "firstTimestamp": now(),
                    "lastTimestamp": now(), "source": {"component": "kubelet"}}
            async with session.post(url, json=body, ssl=admin_ssl(kube)) as resp:
                assert resp.status == 201, await resp.text()
            for count in range(2, COUNT + 1):
                patch = {"count": count, "lastTimestamp": now()}
                async with session.patch(
                        f"{url}/web-0.backoff", data=orjson.dumps(patch), ssl=admin_ssl(kube),
                        headers={"Content-Type": "application/strategic-merge-patch+json"}
                ) as resp:
                    assert resp.status == 200, await resp.text()
        await wait_until(lambda: len(seen) == COUNT, within=60, what="the watcher's versions")
        sink = tmp_path / "events.jsonl"

        def ours() -> list[dict[str, Any]]:
            return [e for e in read_lines(sink)
                    if e.get("metadata", {}).get("namespace") == namespace]

        await wait_until(lambda: len(ours()) >= COUNT, within=60, what="the file receiver")
    watcher.cancel()
    delivered = ours()
    assert [(e["metadata"]["resourceVersion"], e["count"]) for e in delivered] == [
        (e["metadata"]["resourceVersion"], e["count"]) for e in seen]
    assert [e["count"] for e in delivered] == list(range(1, COUNT + 1))
