"""Both event APIs against the real conversion between them: one Event written through
events.k8s.io/v1 (with a series) and one through core/v1; eventpipe reading either API group
delivers every version a raw watch on that same group saw, and nothing else."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline_harness import (
    child_processes,
    read_lines,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import keys, start_watching, watch

GROUPS = {"core": "api/v1", "events.k8s.io": "apis/events.k8s.io/v1"}


@pytest.mark.parametrize("group", sorted(GROUPS))
async def test_both_apis_deliver_what_their_watch_saw(kube: ControlPlane, tmp_path: Path,
                                                      group: str) -> None:
    namespace = f"apis-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready, api=GROUPS[group]))
    config = write_config(tmp_path, kubeconfig=kube.admin_kubeconfig,
                          extra={"watch": {"apiGroup": group}})
    log = tmp_path / "eventpipe.log"
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    async with child_processes() as procs:
        procs.append(await start_watching(config, log))
        await asyncio.wait_for(ready.wait(), 30)
        new_api = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
                   "metadata": {"name": "series", "namespace": namespace},
                   "eventTime": stamp, "reportingController": "example.com/ctl",
                   "reportingInstance": "ctl-1", "action": "Probe", "reason": "Unhealthy",
                   "type": "Warning", "note": "probe failed",
                   "regarding": {"kind": "Pod", "name": "p", "namespace": namespace}}
        core_api = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": "legacy", "namespace": namespace},
                    "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
                    "reason": "Pulled", "message": "pulled", "type": "Normal", "count": 1}
        for manifest in (new_api, core_api):
            await asyncio.to_thread(kube.kubectl, "create", "-f", "-",
                                    input_text=json.dumps(manifest))
        await asyncio.to_thread(
            kube.kubectl, "-n", namespace, "patch", "events.v1.events.k8s.io", "series",
            "--type=merge", "-p", json.dumps({"series": {"count": 2, "lastObservedTime": stamp}}))
        await wait_until(lambda: len(keys(seen, namespace)) == 3, within=60,
                         what="three versions on the raw watch")
        await wait_until(lambda: keys(read_lines(tmp_path / "events.jsonl"), namespace)
                         == keys(seen, namespace), within=60,
                         what="the watched versions in the file receiver")
    watcher.cancel()
    delivered = [e for e in read_lines(tmp_path / "events.jsonl")
                 if e["metadata"]["namespace"] == namespace]
    assert len(delivered) == 3
