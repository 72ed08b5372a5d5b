"""TTL: the API server (--event-ttl=60s) expires an Event; after DELETED on the raw watch,
`eventpipe events --for pod/NAME --versions` still shows every version from the spool."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from tests.pipeline_harness import (
    child_processes,
    read_lines,
    run_cli,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import start_watching, watch


async def test_expired_event_history_stays_in_the_spool(kube: ControlPlane,
                                                        tmp_path: Path) -> None:
    namespace = f"ttl-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    seen: list[dict[str, Any]] = []
    deleted: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready, deleted=deleted))
    config = write_config(tmp_path, kubeconfig=kube.admin_kubeconfig)
    log = tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(await start_watching(config, log))
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.to_thread(kube.kubectl, "create", "-f", "-", input_text=json.dumps({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "db-0.oom", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": "db-0", "namespace": namespace},
            "reason": "OOMKilling", "message": "oom", "type": "Warning", "count": 1}))
        for count in (2, 3):
            await asyncio.to_thread(kube.kubectl, "-n", namespace, "patch", "event",
                                    "db-0.oom", "--type=merge", "-p", json.dumps({"count": count}))
        await wait_until(lambda: len(seen) == 3, within=30, what="three versions watched")
        # etcd expires the lease behind the TTL: up to the TTL plus the API server's lease reuse.
        await wait_until(lambda: bool(deleted), within=200, what="DELETED by the event TTL")
        await wait_until(lambda: len([e for e in read_lines(tmp_path / "events.jsonl")
                                      if e["metadata"]["namespace"] == namespace]) == 3,
                         within=30, what="three versions delivered")
    watcher.cancel()
    assert kube.kubectl("-n", namespace, "get", "events", "-o", "name").strip() == ""
    result = await run_cli("events", "--config", str(config), "-n", namespace,
                           "--for", "pod/db-0", "--versions", "-o", "json")
    assert result.code == 0, result.stderr
    for version in seen:
        assert f'"{version["metadata"]["resourceVersion"]}"' in result.stdout
