"""Measurement: enrichment from the metadata caches in a burst, on versus off.

The fake API server (its own process) creates 10,000 Pods (10 per ReplicaSet of a Deployment,
100 per Node) and prepares 50,000 Events about them; with enrichment on, the burst starts once
eventpipe's 8 metadata caches have listed and opened their watches (synced), with it off
(`omitLookup: true`) once the Event watch is open. Figures: watch → spool and → file rates
(timed from the first add), the share of written events carrying the pod's labels, owner
(the Deployment) and node, the object GETs and list/watch requests eventpipe made (its own
metrics), peak RSS (VmHWM), and eventpipe's CPU time per event from the burst's start until
all of it was in the spool, and until all of it was in the file. Rates on a shared machine
drift more than enrichment costs, CPU per event far less: `cost_percent` is the median over
the interleaved pairs of CPU per event on / off - 1, to the spool and to the file.

    python -m bench.run --only enrich [--runs 3]
"""

from __future__ import annotations

import shutil
import statistics
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    WORK,
    LineTail,
    SpoolProbe,
    cpu_seconds,
    eventpipe,
    fake_api,
    vm_hwm_mib,
    wait_burst,
    write_config,
)

PODS = 10_000
EVENTS = 50_000
CACHES = 8


def _metrics(port: int) -> dict[str, float]:
    """Sums per metric name of eventpipe's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def _enriched_share(output: Path) -> float:
    """Share of written events with labels, the Deployment owner and the node."""
    total = complete = 0
    with output.open("rb") as handle:
        for line in handle:
            involved = orjson.loads(line)["involvedObject"]
            total += 1
            owner = involved.get("owner") or {}
            if involved.get("labels") and owner.get("kind") == "Deployment" and \
                    involved.get("node"):
                complete += 1
    return complete / total if total else 0.0


def run_once(folder: Path, *, enrich: bool, pods: int = PODS, events: int = EVENTS,
             within: float = 300.0) -> dict[str, float]:
    """One burst into a fresh eventpipe, with enrichment on or off."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig, spool, output = folder / "kubeconfig", folder / "spool.db", folder / "out.jsonl"
    probe, tail = SpoolProbe(spool), LineTail(output)
    hold = ["--after-object-watches", str(CACHES)] if enrich else []
    with fake_api(kubeconfig, "--start-rv", "1000", "--pods", str(pods),
                  "--watch-burst", str(events), *hold) as api:
        config = write_config(folder, kubeconfig=kubeconfig, spool=spool, output=output,
                              extra={"omitLookup": not enrich})
        port = int(yaml.safe_load(config.read_text())["http"]["port"])
        with eventpipe(config, folder / "eventpipe.log") as proc:
            try:
                t0 = api.wait_mark("burst-start", within=120)
                cpu0 = cpu_seconds(proc.pid)
                base = probe.head()
                done = wait_burst(probe, tail, events, base=base, within=within,
                                  alive=proc)
                rss = vm_hwm_mib(proc.pid)
                sums = _metrics(port)
            finally:
                probe.close()
                tail.close()
    return {
        "spool_events_per_s": events / (done["spool"] - t0),
        "file_events_per_s": events / (done["file"] - t0),
        "spool_cpu_us_per_event": (done["spool_cpu"] - cpu0) / events * 1e6,
        "file_cpu_us_per_event": (done["file_cpu"] - cpu0) / events * 1e6,
        "enriched_share": _enriched_share(output),
        "object_gets": sums.get("eventpipe_enrich_lookups_total", 0.0),
        "list_watch_requests": sums.get("eventpipe_enrich_cache_requests_total", 0.0),
        "cached_objects": sums.get("eventpipe_enrich_cache_objects", 0.0),
        "peak_rss_mib": rss,
    }


def measure(runs: int) -> dict[str, Any]:
    """`runs` interleaved pairs (on, off), each with a fresh server, spool and eventpipe."""
    on: list[dict[str, float]] = []
    off: list[dict[str, float]] = []
    for i in range(runs):
        for enrich, results in ((True, on), (False, off)):
            folder = WORK / f"enrich-{i}-{'on' if enrich else 'off'}"
            try:
                results.append(run_once(folder, enrich=enrich))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    median_on = {k: statistics.median(r[k] for r in on) for k in on[0]}
    median_off = {k: statistics.median(r[k] for r in off) for k in off[0]}
    costs = {where: [100.0 * (a[f"{where}_cpu_us_per_event"] / b[f"{where}_cpu_us_per_event"]
                              - 1) for a, b in zip(on, off, strict=True)]
             for where in ("spool", "file")}
    return {"on": median_on, "off": median_off,
            "cost_percent": max(statistics.median(c) for c in costs.values()),
            "spool_cost_percent": statistics.median(costs["spool"]),
            "file_cost_percent": statistics.median(costs["file"]),
            "pair_costs_percent": costs, "runs_on": on, "runs_off": off}


def cache_memory(pods: int = PODS) -> dict[str, float]:
    """Bytes the metadata store holds for `pods` Pods plus their ReplicaSets (10 pods each)
    and Deployments, with metadata shaped like a Deployment's pods (3 labels, one controller
    reference, one annotation), read as the informer reads it: each object parsed from its
    own JSON, as a watch line is. Measured with tracemalloc, in this process."""
    import tracemalloc

    from eventpipe.enrich.informer import InformerSettings, MetadataInformer
    from eventpipe.enrich.kinds import KINDS
    from eventpipe.enrich.metastore import MetadataStore

    store = MetadataStore(max_objects=10 * pods, tombstone_ttl=600.0)
    feeds = {kind: MetadataInformer(None, KINDS[kind], "", store,  # type: ignore[arg-type]
                                    settings=InformerSettings())
             for kind in ("Pod", "ReplicaSet", "Deployment")}

    def item(kind: str, name: str, uid: str, labels: dict[str, str],
             owner: tuple[str, str, str] | None) -> bytes:
        meta: dict[str, Any] = {"name": name, "namespace": "bench", "uid": uid,
                                "resourceVersion": "12345678", "labels": labels,
                                "annotations": {"kubernetes.io/psp": "restricted"}}
        if owner:
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0],
                                        "name": owner[1], "uid": owner[2],
                                        "controller": True, "blockOwnerDeletion": True}]
        row: dict[str, Any] = {"metadata": meta}
        if kind == "Pod":
            return orjson.dumps({"rows": [{"cells": [name, "node-1"], "object": row}]})
        return orjson.dumps(row)

    lines: list[tuple[str, bytes]] = []
    for d in range(pods // 10):
        app = f"app-{d:05d}"
        dep_uid, rs_uid = f"d-{d:08d}-0000-4000-8000-000000000000", f"r-{d:08d}-0000-4000"
        lines.append(("Deployment", item("Deployment", app, dep_uid, {"app": app}, None)))
        lines.append(("ReplicaSet", item("ReplicaSet", f"{app}-5d4f9c", rs_uid,
                                         {"app": app, "pod-template-hash": "5d4f9c"},
                                         ("Deployment", app, dep_uid))))
        for p in range(10):
            lines.append(("Pod", item("Pod", f"{app}-5d4f9c-{p:05d}", f"p-{d:08d}-{p:04d}",
                                      {"app": app, "pod-template-hash": "5d4f9c",
                                       "tier": "web"}, ("ReplicaSet", f"{app}-5d4f9c", rs_uid))))
    feeds["Pod"]._node_column = 1
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for kind, line in lines:
        for info in feeds[kind]._infos(orjson.loads(line), 0.0):
            store.upsert(info)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"objects": float(len(store)), "bytes": float(held),
            "bytes_per_pod_with_owners": held / pods,
            "mib_per_10000_pods": held / pods * 1e4 / 2**20}
