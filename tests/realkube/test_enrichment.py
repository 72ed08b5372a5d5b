"""Enrichment against objects the real controllers made, from eventpipe's metadata caches
(PartialObjectMetadata lists and watches, the Pod Table for the node): Pod → ReplicaSet →
Deployment, Pod → Job → CronJob, StatefulSet and DaemonSet pods, the node the real scheduler
bound a pod to (a Node created here, no kubelet), and a deleted pod's late event marked
`deleted` with its last labels. No object is fetched by GET. eventpipe watches the test's
namespace only, so its node comes from the Pod Table, not a Node cache."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.pipeline_harness import (
    child_processes,
    http_get,
    read_lines,
    sample_values,
    scrape,
    wait_started,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import start_watching

TOLERATE = "tolerations: [{operator: Exists}]"  # the Node has no kubelet: it is tainted
WORKLOADS = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, tier: front}}}}
    spec: {{nodeSelector: {{eventpipe-test: {node}}}, {tol},
           containers: [{{name: web, image: registry.invalid/web:1}}]}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: {ns}}}
spec:
  replicas: 1
  serviceName: db
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{nodeSelector: {{eventpipe-test: {node}}}, {tol},
           containers: [{{name: db, image: registry.invalid/db:1}}]}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec: {{nodeSelector: {{eventpipe-test: {node}}}, {tol},
           containers: [{{name: agent, image: registry.invalid/agent:1}}]}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: backup, namespace: {ns}}}
spec:
  schedule: "0 0 1 1 *"
  jobTemplate:
    spec:
      template:
        metadata: {{labels: {{app: backup}}}}
        spec: {{nodeSelector: {{eventpipe-test: {node}}}, {tol}, restartPolicy: Never,
               containers: [{{name: backup, image: registry.invalid/backup:1}}]}}
"""


def node_manifest(name: str) -> str:
    """A schedulable Node with room for pods and no kubelet behind it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    capacity = {"cpu": "4", "memory": "8Gi", "pods": "20"}
    return json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"eventpipe-test": name, "zone": "z1"}},
        "status": {"capacity": capacity, "allocatable": capacity, "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ok",
             "lastHeartbeatTime": now, "lastTransitionTime": now}]}})


def late_event(namespace: str, pod: dict[str, Any]) -> str:
    """A Killing event about a pod that is already gone, written the way a kubelet does."""
    meta = pod["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.late", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": namespace,
                           "name": meta["name"], "uid": meta["uid"],
                           "resourceVersion": meta["resourceVersion"]},
        "reason": "Killing", "message": "Stopping container", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now})


async def test_enrichment_follows_what_the_real_controllers_made(
        kube: ControlPlane, tmp_path: Path) -> None:
    namespace = f"enr-{uuid.uuid4().hex[:8]}"
    node = f"enr-node-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(kube.kubectl, "create", "namespace", namespace)
    await asyncio.to_thread(kube.kubectl, "create", "-f", "-", input_text=node_manifest(node))
    log = tmp_path / "eventpipe.log"
    sink = tmp_path / "events.jsonl"

    def mine() -> list[dict[str, Any]]:
        return [e for e in read_lines(sink) if e["metadata"]["namespace"] == namespace]

    def scheduled(prefix: str) -> list[dict[str, Any]]:
        return [e for e in mine() if e["reason"] == "Scheduled"
                and e["involvedObject"]["name"].startswith(prefix)]

    try:
        async with child_processes() as procs:
            # Only this namespace: events other tests left about objects long gone would be
            # looked up by GET (the fallback for what the caches do not hold).
            procs.append(await start_watching(write_config(
                tmp_path, kubeconfig=kube.admin_kubeconfig, extra={"namespace": namespace}), log))
            port = await wait_started(procs[0], log, within=5)
            status, body = await http_get(port, "/readyz")
            assert status == 200 and '"enrichment"' in body and "syncing" not in body, body
            await asyncio.to_thread(kube.kubectl, "apply", "-f", "-", input_text=WORKLOADS.format(
                ns=namespace, node=node, tol=TOLERATE))
            await asyncio.to_thread(kube.kubectl, "-n", namespace, "create", "job",
                                    "backup-manual", "--from=cronjob/backup")
            await wait_until(lambda: all(scheduled(p) for p in ("web-", "db-", "agent-",
                                                                "backup-manual-")),
                             within=120, what="Scheduled events for every workload's pod")
            owners = {p: scheduled(p)[-1]["involvedObject"]
                      for p in ("web-", "db-", "agent-", "backup-manual-")}
            assert owners["web-"]["owner"] == {"kind": "Deployment", "name": "web"}
            assert owners["web-"]["ownerReferences"][0]["kind"] == "ReplicaSet"
            assert owners["web-"]["labels"]["tier"] == "front"
            assert owners["db-"]["owner"] == {"kind": "StatefulSet", "name": "db"}
            assert owners["agent-"]["owner"] == {"kind": "DaemonSet", "name": "agent"}
            assert owners["backup-manual-"]["owner"] == {"kind": "CronJob", "name": "backup"}
            # The Scheduled event is written as the binding lands; its node comes from the
            # pod's watch (the Table's Node column), at the version the event names or later.
            assert {o.get("node") for o in owners.values()} == {node}
            job_events = [e for e in mine() if e["involvedObject"]["kind"] == "Job"]
            assert job_events and job_events[0]["involvedObject"]["owner"] == {
                "kind": "CronJob", "name": "backup"}

            pod = json.loads(await asyncio.to_thread(
                kube.kubectl, "-n", namespace, "get", "pod", "-l", "app=web", "-o",
                "jsonpath={.items[0]}"))
            await asyncio.to_thread(kube.kubectl, "-n", namespace, "delete", "pod",
                                    pod["metadata"]["name"], "--grace-period=0", "--force")
            await asyncio.to_thread(kube.kubectl, "create", "-f", "-",
                                    input_text=late_event(namespace, pod))
            await wait_until(lambda: any(e["reason"] == "Killing" for e in mine()), within=60,
                             what="the late Killing event in the file")
            killing = next(e for e in mine() if e["reason"] == "Killing")["involvedObject"]
            assert killing["deleted"] is True and killing["labels"]["app"] == "web"
            assert killing["owner"] == {"kind": "Deployment", "name": "web"}
            samples = await scrape(port)
            procs[0].terminate()
    finally:
        await asyncio.to_thread(kube.kubectl, "delete", "node", node, "--wait=false")
    assert sum(sample_values(samples, "eventpipe_enrich_lookups_total")) == 0, "no GETs"
    assert sum(sample_values(samples, "eventpipe_enrich_enriched_total", source="watch")) > 5
    synced = sample_values(samples, "eventpipe_enrich_cache_synced")
    assert len(synced) == 7 and set(synced) == {1.0}, "7 namespaced kinds (Nodes: cluster)"
