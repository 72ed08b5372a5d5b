"""The scheduler's FailedScheduling, read through events.k8s.io/v1, with a count that grows.

A pod with no Node to run on fails scheduling, and fails again each time the scheduler retries
it (backoff, then the unschedulable queue; the fixture's
`--pod-max-in-unschedulable-pods-duration=10s` keeps that inside a test). kube-scheduler
v1.37.2 records these through client-go's core/v1 recorder, whose correlator PATCHes one Event
with a growing `count`; events.k8s.io/v1 serves that as `deprecatedCount` (its `series` stays
unset; an Event written with a series is tests/realkube/test_event_apis.py). Every version the
raw events.k8s.io watch saw is delivered, once, and the spool's count deltas are the
differences of the counts that watch saw."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from tests.pipeline_harness import child_processes, read_lines, wait_until, write_config
from tests.realkube.controlplane import ControlPlane
from tests.realkube.watching import keys, start_watching, watch


def series_count(event: dict[str, Any]) -> int:
    """The occurrences an events.k8s.io/v1 Event stands for, as the API documents them."""
    return int((event.get("series") or {}).get("count") or event.get("deprecatedCount") or 1)


def stored_deltas(spool: Path, uids: set[str]) -> list[tuple[str, int, int]]:
    """(resourceVersion, occurrences, count_delta) of the spool's rows for `uids`, in order."""
    marks = ", ".join("?" * len(uids))
    with sqlite3.connect(spool) as db:
        rows = db.execute(f"SELECT resource_version, occurrences, count_delta FROM events "
                          f"WHERE uid IN ({marks}) ORDER BY seq", sorted(uids)).fetchall()
    db.close()
    return [(str(rv), int(n), int(d)) for rv, n, d in rows]


async def test_failed_scheduling_series_growth_arrives(kube: ControlPlane,
                                                       tmp_path: Path) -> None:
    namespace = f"sched-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready,
                                        api="apis/events.k8s.io/v1"))
    config = write_config(tmp_path, kubeconfig=kube.admin_kubeconfig,
                          extra={"watch": {"apiGroup": "events.k8s.io"}})
    sink = tmp_path / "events.jsonl"

    def failures() -> list[dict[str, Any]]:
        return [e for e in seen if e["reason"] == "FailedScheduling"
                and e["regarding"]["name"] == "waiting"]

    async with child_processes() as procs:
        procs.append(await start_watching(config, tmp_path / "eventpipe.log"))
        await asyncio.wait_for(ready.wait(), 30)
        # The pod is admitted once the ServiceAccount controller made the namespace's default.
        await wait_until(lambda: "default" in kube.kubectl(
            "-n", namespace, "get", "serviceaccounts", "-o", "name"), within=60,
            what="the default ServiceAccount")
        await asyncio.to_thread(kube.kubectl, "-n", namespace, "run", "waiting",
                                "--image=registry.invalid/none:1", "--restart=Never")
        await wait_until(lambda: bool(failures()), within=60, what="the first FailedScheduling")
        await wait_until(lambda: any(series_count(e) >= 3 for e in failures()), within=120,
                         what="FailedScheduling PATCHed to count 3")
        snapshot = keys(seen, namespace)
        await wait_until(lambda: snapshot <= keys(read_lines(sink), namespace), within=60,
                         what="the watched versions in the file receiver")
    watcher.cancel()
    watched = failures()
    counts = [series_count(e) for e in watched]
    assert counts[0] == 1 and counts == sorted(counts) and counts[-1] >= 3, counts
    assert len({e["metadata"]["uid"] for e in watched}) == 1, "one Event, its count grown"
    delivered = [e for e in read_lines(sink) if e["metadata"]["namespace"] == namespace]
    assert keys(delivered, namespace) == keys(seen, namespace), "delivered = watched"
    assert len(delivered) == len(keys(delivered, namespace)), "a version delivered twice"
    mine = [e for e in delivered if e["reason"] == "FailedScheduling"]
    assert [e["metadata"]["resourceVersion"] for e in mine] == [
        e["metadata"]["resourceVersion"] for e in watched]
    assert all(e["reportingController"] == "default-scheduler" for e in mine)
    expected = [(e["metadata"]["resourceVersion"], n, n - before)
                for e, n, before in zip(watched, counts, [0, *counts[:-1]], strict=True)]
    assert stored_deltas(tmp_path / "spool.db", {watched[0]["metadata"]["uid"]}) == expected
