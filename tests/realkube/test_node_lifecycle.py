"""A Node object with no kubelet behind it: once its Ready heartbeat is older than the grace
period (10 s in the fixture), the real node lifecycle controller records NodeNotReady; the file
receiver has every version of that Node's events the raw watch saw."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.pipeline_harness import (
    child_processes,
    read_lines,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import start_watching, watch


def about(events: list[dict[str, Any]], node: str) -> set[tuple[str, str, str]]:
    """(uid, resourceVersion, reason) of the events whose involved object is `node`."""
    return {(e["metadata"]["uid"], e["metadata"]["resourceVersion"], e["reason"])
            for e in events if e["involvedObject"].get("kind") == "Node"
            and e["involvedObject"].get("name") == node}


async def test_node_without_kubelet_goes_not_ready(kube: ControlPlane, tmp_path: Path) -> None:
    node = f"ghost-{uuid.uuid4().hex[:8]}"
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, "default", seen, ready))
    log = tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(await start_watching(
            write_config(tmp_path, kubeconfig=kube.admin_kubeconfig), log))
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.to_thread(kube.kubectl, "apply", "-f", "-", input_text=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {"type": "Ready", "status": "True", "reason": "KubeletReady",
                     "lastHeartbeatTime": now, "lastTransitionTime": now}
        await asyncio.to_thread(kube.kubectl, "patch", "node", node, "--subresource=status",
                                "--type=merge", "-p",
                                json.dumps({"status": {"conditions": [condition]}}))
        await wait_until(lambda: any(r == "NodeNotReady" for _, _, r in about(seen, node)),
                         within=90, what="NodeNotReady from the node lifecycle controller")
        snapshot = about(seen, node)
        await wait_until(lambda: snapshot <= about(read_lines(tmp_path / "events.jsonl"), node),
                         within=60, what="the Node's events in the file receiver")
    watcher.cancel()
    delivered = [e for e in read_lines(tmp_path / "events.jsonl")
                 if e["involvedObject"].get("name") == node]
    assert len(delivered) == len(about(delivered, node)), "a version delivered twice"
    assert about(delivered, node) <= about(seen, node)
    await asyncio.to_thread(kube.kubectl, "delete", "node", node, "--wait=false")
