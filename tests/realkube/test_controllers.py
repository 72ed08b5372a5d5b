"""Events made by the real controllers: a Deployment whose pods cannot be scheduled (there is no
Node) gives the deployment controller's ScalingReplicaSet, the ReplicaSet controller's
SuccessfulCreate/SuccessfulDelete and the scheduler's FailedScheduling. Every version the raw
watch saw is in the file receiver, and the file has nothing the watch did not see."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from tests.pipeline_harness import (
    child_processes,
    read_lines,
    wait_for_exit,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import keys, start_watching, watch

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: registry.invalid/web:1}}]}}
"""


async def test_controller_events_arrive_as_watched(kube: ControlPlane, tmp_path: Path) -> None:
    namespace = f"ctl-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready))
    log = tmp_path / "eventpipe.log"
    sink = tmp_path / "events.jsonl"
    async with child_processes() as procs:
        procs.append(await start_watching(
            write_config(tmp_path, kubeconfig=kube.admin_kubeconfig), log))
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.to_thread(kube.kubectl, "apply", "-f", "-",
                                input_text=DEPLOYMENT.format(ns=namespace))

        def reasons() -> set[str]:
            return {e["reason"] for e in seen}

        await wait_until(lambda: {"ScalingReplicaSet", "SuccessfulCreate",
                                  "FailedScheduling"} <= reasons(),
                         within=90, what="the controllers' and scheduler's events")
        await asyncio.to_thread(kube.kubectl, "-n", namespace, "scale", "deployment/web",
                                "--replicas=1")
        await wait_until(lambda: "SuccessfulDelete" in reasons(), within=60,
                         what="SuccessfulDelete after scaling down")
        snapshot = keys(seen, namespace)
        await wait_until(lambda: snapshot <= keys(read_lines(sink), namespace), within=60,
                         what="the watched versions in the file receiver")
        procs[0].terminate()
        assert await wait_for_exit(procs[0], within=30) == 0
    delivered = read_lines(sink)
    # What eventpipe delivered up to its stop, the watcher has seen too (allowing it to catch up).
    await wait_until(lambda: keys(delivered, namespace) <= keys(seen, namespace), within=30,
                     what="the watcher to see every delivered version")
    watcher.cancel()
    mine = [e for e in delivered if e["metadata"]["namespace"] == namespace]
    assert len(mine) == len(keys(delivered, namespace)), "a version delivered twice"
    scheduling = [e for e in mine if e["reason"] == "FailedScheduling"]
    assert scheduling and all(e["source"].get("component") in (None, "default-scheduler")
                              or e.get("reportingComponent") == "default-scheduler"
                              for e in scheduling)
