"""The HTTP port of a real `eventpipe run` process: /healthz, /readyz following the watch
(503 with the reason while RBAC forbids it), and /metrics: the resmo-compatible event counter
(count deltas of a merged event, `metricsNamePrefix`, `clusterName`) and the self metrics."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson

from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    Samples,
    child_processes,
    http_get,
    k8s_event,
    read_lines,
    sample_values,
    scrape,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until,
    wait_until_async,
    write_config,
)

FAST_RETRY = {"watch": {"backoffInitial": "100ms", "backoffMax": "300ms"}}


def one(samples: Samples, name: str, **labels: str) -> float:
    values = sample_values(samples, name, **labels)
    assert len(values) == 1, f"{name}{labels}: {values}"
    return values[0]


async def test_health_readiness_and_metrics(api: FakeApiServer, tmp_path: Path) -> None:
    api.forbid(all_namespaces=True)
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info", **FAST_RETRY})
    out, log = tmp_path / "events.jsonl", tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(proc := await start_subprocess(config, log=log))
        port = await wait_started(proc, log)
        assert await http_get(port, "/healthz") == (200, '{"status": "ok"}')

        # RBAC refuses the list: not ready, and /readyz says why.
        await api.wait_for(lambda: any(r.status == 403 for r in api.list_requests()),
                           within=10)
        status, body = await http_get(port, "/readyz")
        assert status == 503
        details = orjson.loads(body)
        assert details["ready"] is False
        assert "403" in details["streams"]["core/*"]
        assert "forbidden" in details["streams"]["core/*"]

        api.allow_all()

        async def ready() -> bool:
            return (await http_get(port, "/readyz"))[0] == 200
        await wait_until_async(ready, within=15, what="/readyz 200 once RBAC allows the watch")
        assert orjson.loads((await http_get(port, "/readyz"))[1])["streams"] == {
            "core/*": "watching"}

        # A merged event: one object whose count climbs 1 -> 5 in five versions.
        uid = api.add(k8s_event("web-1", namespace="shop"))["metadata"]["uid"]
        for _ in range(4):
            api.bump_count(uid)
        api.add(k8s_event("db-0", namespace="shop", reason="Pulled", count=3))
        await wait_until(lambda: len(read_lines(out)) == 6, what="six versions in the file")

        async def lag_settled() -> bool:
            return sample_values(await scrape(port), "eventpipe_sink_lag_events",
                                 receiver="dump") == [0.0]
        await wait_until_async(lag_settled, within=10, what="lag gauge back to 0")
        samples = await scrape(port)
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0

    backoff = sample_values(samples, "event_exporter_events_total", reason="BackOff")
    assert backoff == [5.0], "one series, incremented by each version's count delta"
    assert one(samples, "event_exporter_events_total", namespace="shop",
               involved_object_kind="Pod", involved_object_name="web-1", reason="BackOff",
               event_type="Warning") == 5.0
    # A first version counts its whole count: the occurrences happened.
    assert one(samples, "event_exporter_events_total", reason="Pulled") == 3.0
    assert all("cluster" not in dict(labels) for (name, labels) in samples
               if name == "event_exporter_events_total")
    assert one(samples, "eventpipe_watch_events_total", type="ADDED") == 2.0
    assert one(samples, "eventpipe_watch_events_total", type="MODIFIED") == 4.0
    assert one(samples, "eventpipe_spool_events_total") == 6.0
    assert one(samples, "eventpipe_sink_sent_total", receiver="dump") == 6.0
    assert one(samples, "eventpipe_sink_lag_events", receiver="dump") == 0.0
    assert one(samples, "eventpipe_delivery_latency_seconds_count", receiver="dump") == 6.0
    assert one(samples, "eventpipe_delivery_latency_seconds_bucket", receiver="dump",
               le="+Inf") == 6.0
    assert one(samples, "eventpipe_watch_restarts_total", reason="http_403") >= 1.0


async def test_metrics_name_prefix_and_cluster_name(api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info", "metricsNamePrefix": "k8s_",
                                 "clusterName": "prod-eu-1"})
    out, log = tmp_path / "events.jsonl", tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(proc := await start_subprocess(config, log=log))
        port = await wait_started(proc, log)
        await api.wait_for_watchers(1, within=20)
        uid = api.add(k8s_event("api-7"))["metadata"]["uid"]
        api.bump_count(uid)
        await wait_until(lambda: len(read_lines(out)) == 2, what="two versions")
        samples = await scrape(port)
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0

    assert sample_values(samples, "event_exporter_events_total") == []
    assert one(samples, "k8s_events_total", reason="BackOff", involved_object_name="api-7",
               cluster="prod-eu-1") == 2.0
    for line in read_lines(out):
        assert line["clusterName"] == "prod-eu-1"
        assert line["metadata"]["uid"] == uid
