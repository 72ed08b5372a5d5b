"""Involved-object enrichment: owner chains, caching, deletion, failures, rate limit, routing
and omitLookup — against the fake API server through the real kubernetes_asyncio client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from eventpipe.enrich import EnrichedEvent, Enricher, EnrichSettings
from eventpipe.enrich.client import KubeObjectClient
from eventpipe.kube.client import connect
from eventpipe.sinks.encoding import LineEncoder
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import read_lines, running, wait_until, write_config

Obj = dict[str, Any]


def about(ref: Obj, reason: str = "BackOff", n: int = 0) -> Obj:
    """A core/v1 Event about the object `ref` points at."""
    ns = ref.get("namespace", "default")
    return {
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": f"{ref['name']}.{reason.lower()}{n}", "namespace": ns},
        "involvedObject": dict(ref), "reason": reason, "type": "Warning",
        "message": f"{reason} {n}", "count": 1, "firstTimestamp": "2026-11-23T10:00:00Z",
        "lastTimestamp": "2026-11-23T10:00:00Z", "source": {"component": "kubelet"},
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[Any]:
    api_client = await connect(str(tmp_path / "kubeconfig"))
    yield api_client
    await api_client.close()


def make(client: Any, registry: CollectorRegistry | None = None, clock: Any = time.monotonic,
         **settings: Any) -> Enricher:
    values: dict[str, Any] = {"qps": 1000.0, "burst": 1000, "deadline": 5.0}
    values.update(settings)
    return Enricher(KubeObjectClient(client, timeout=5.0), settings=EnrichSettings(**values),
                    registry=registry or CollectorRegistry(), clock=clock)


def skipped(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("eventpipe_enrich_skipped_total", {"reason": reason}) or 0


def workloads(api: FakeApiServer) -> dict[str, Obj]:
    o = api.objects
    o.add("Node", "node-1", labels={"topology.kubernetes.io/zone": "a"})
    dep = o.add("Deployment", "web", labels={"app": "web"})
    rs = o.add("ReplicaSet", "web-5d4f", owner=dep)
    cron = o.add("CronJob", "backup")
    job = o.add("Job", "backup-2911", owner=cron)
    sts = o.add("StatefulSet", "db")
    ds = o.add("DaemonSet", "agent")
    return {
        "web": o.add("Pod", "web-5d4f-x1", owner=rs, node="node-1", labels={"app": "web"},
                     annotations={"team.example.com/owner": "pay"}),
        "job": o.add("Pod", "backup-2911-q", owner=job, node="node-1"),
        "db": o.add("Pod", "db-0", owner=sts, labels={"app": "db"}),
        "agent": o.add("Pod", "agent-77", owner=ds, node="node-1"),
        "bare": o.add("Pod", "bare", labels={"run": "bare"}),
        "node": o.objects[("v1", "nodes", "", "node-1")],
    }


async def test_owner_chains_resolve_to_the_top_controller(api: FakeApiServer,
                                                          client: Any) -> None:
    objs = workloads(api)
    enricher = make(client)
    events = {k: about(api.objects.reference(o)) for k, o in objs.items()}
    events["node"]["involvedObject"]["uid"] = "node-1"  # the kubelet's Node references do this
    served = orjson.dumps(events)
    await enricher.prefetch(events.values())
    out = {k: enricher.enrich(e) for k, e in events.items()}
    assert orjson.dumps(events) == served, "the parsed events must not be changed"
    web = out["web"]["involvedObject"]
    assert isinstance(out["web"], EnrichedEvent)
    assert web["owner"] == {"kind": "Deployment", "name": "web"}
    assert web["labels"] == {"app": "web"} and web["node"] == "node-1"
    assert web["annotations"] == {"team.example.com/owner": "pay"}
    assert web["ownerReferences"][0]["kind"] == "ReplicaSet"
    for key in events["web"]["involvedObject"]:  # only added, nothing served replaced
        assert web[key] == events["web"]["involvedObject"][key]
    assert out["job"]["involvedObject"]["owner"] == {"kind": "CronJob", "name": "backup"}
    assert out["db"]["involvedObject"]["owner"] == {"kind": "StatefulSet", "name": "db"}
    assert out["agent"]["involvedObject"]["owner"] == {"kind": "DaemonSet", "name": "agent"}
    assert "owner" not in out["bare"]["involvedObject"]
    node = out["node"]["involvedObject"]
    assert node["labels"] == {"topology.kubernetes.io/zone": "a"} and "deleted" not in node
    # Pods 5 + Node + RS, Deployment, Job, CronJob, StatefulSet, DaemonSet: each once.
    assert api.objects.lookups == 12
    await enricher.prefetch(events.values())
    assert api.objects.lookups == 12


async def test_served_keys_are_never_replaced(api: FakeApiServer, client: Any) -> None:
    pod = api.objects.add("Pod", "p", labels={"app": "real"})
    event = about({**api.objects.reference(pod), "labels": {"app": "served"}})
    enricher = make(client)
    await enricher.prefetch([event])
    assert enricher.enrich(event)["involvedObject"]["labels"] == {"app": "served"}


async def test_deleted_objects_are_marked_and_cached(api: FakeApiServer, client: Any) -> None:
    gone = api.objects.add("Pod", "gone")
    api.objects.delete(gone)
    old = api.objects.add("Pod", "reused", labels={"gen": "1"})
    api.objects.delete(old)
    api.objects.add("Pod", "reused", labels={"gen": "2"})  # same name, new uid
    events = [about(api.objects.reference(gone), n=i) for i in range(50)]
    events.append(about(api.objects.reference(old)))
    enricher = make(client)
    await enricher.prefetch(events)
    for event in events:
        involved = enricher.enrich(event)["involvedObject"]
        assert involved["deleted"] is True and "labels" not in involved
    assert api.objects.lookups == 2
    await enricher.prefetch(events)
    assert api.objects.lookups == 2, "a deleted object is asked about once"


@pytest.mark.parametrize("code", [429, 500])
async def test_a_failing_api_slows_nothing(api: FakeApiServer, client: Any, code: int) -> None:
    pods = [api.objects.add("Pod", f"p{i}") for i in range(20)]
    api.objects.fail(code)
    registry = CollectorRegistry()
    enricher = make(client, registry, deadline=0.5)
    events = [about(api.objects.reference(p), n=n) for p in pods for n in range(5)]
    for _ in range(3):
        started = time.monotonic()
        await enricher.prefetch(events)
        assert time.monotonic() - started < 0.5 + 0.4
        assert all(enricher.enrich(e) is e for e in events)
    assert skipped(registry, "api_error") == 3 * len(events)
    assert api.objects.lookups == 20, "a failed object is not asked again at once"


async def test_a_hanging_api_costs_one_deadline(api: FakeApiServer) -> None:
    class Hanging:
        async def get(self, path: str) -> tuple[int, Any]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    registry = CollectorRegistry()
    enricher = Enricher(Hanging(), settings=EnrichSettings(deadline=0.05), registry=registry)
    try:
        event = about({"kind": "Pod", "name": "p", "namespace": "default", "uid": "u1"})
        started = time.monotonic()
        await enricher.prefetch([event])
        assert time.monotonic() - started < 0.5
        assert enricher.enrich(event) is event and skipped(registry, "timeout") == 1
    finally:
        await enricher.close()


async def test_lookups_stay_within_the_budget(api: FakeApiServer, client: Any) -> None:
    clock = FakeClock()
    pods = [api.objects.add("Pod", f"p{i}", labels={"i": str(i)}) for i in range(10)]
    registry = CollectorRegistry()
    enricher = make(client, registry, clock, qps=1.0, burst=3)
    events = [about(api.objects.reference(p)) for p in pods]
    await enricher.prefetch(events)
    enriched = [e for e in events if enricher.enrich(e) is not e]
    assert len(enriched) == 3 and api.objects.lookups == 3
    assert skipped(registry, "rate_limited") == 7
    clock.now += 2.0  # two more tokens
    await enricher.prefetch(events)
    assert api.objects.lookups == 5


async def test_newer_resource_version_refreshes_labels(api: FakeApiServer, client: Any) -> None:
    clock = FakeClock()
    pod = api.objects.add("Pod", "p", labels={"v": "1"})
    enricher = make(client, clock=clock, refresh_after=10.0)
    first = about(api.objects.reference(pod))
    await enricher.prefetch([first])
    api.objects.set_labels(pod, {"v": "2"})
    newer = about(api.objects.reference(pod), n=1)
    clock.now += 1.0
    await enricher.prefetch([first, newer])
    assert api.objects.lookups == 1, "refreshed at most once per refresh_after"
    clock.now += 10.0
    await enricher.prefetch([first])
    assert api.objects.lookups == 1, "an event naming the cached version refreshes nothing"
    await enricher.prefetch([newer])
    assert api.objects.lookups == 2
    assert enricher.enrich(first)["involvedObject"]["labels"] == {"v": "2"}


async def test_cache_is_bounded_lru(api: FakeApiServer, client: Any) -> None:
    pods = [api.objects.add("Pod", f"p{i}") for i in range(10)]
    registry = CollectorRegistry()
    enricher = make(client, registry, cache_size=4)
    await enricher.prefetch(about(api.objects.reference(p)) for p in pods)
    assert api.objects.lookups == 10
    assert registry.get_sample_value("eventpipe_enrich_cache_entries") == 4


async def test_custom_resources_resolve_through_discovery(api: FakeApiServer,
                                                          client: Any) -> None:
    api.objects.add_kind("example.com/v1", "Widget", "widgets")
    widgets = [api.objects.add("Widget", f"w{i}", labels={"w": str(i)}) for i in range(5)]
    unserved = about({"kind": "Gadget", "apiVersion": "example.com/v1", "name": "g",
                      "namespace": "default", "uid": "g1"})
    enricher = make(client)
    for widget in widgets:
        await enricher.prefetch([about(api.objects.reference(widget)), unserved])
    assert enricher.enrich(about(api.objects.reference(widgets[3])))[
        "involvedObject"]["labels"] == {"w": "3"}
    assert enricher.enrich(unserved) is unserved
    assert enricher.resources.requests == 1 and api.objects.lookups == 5
    assert any(r.path == "/apis/example.com/v1" for r in api.requests)


def test_line_encoder_writes_enriched_events_and_raw_bodies_otherwise() -> None:
    encoder = LineEncoder(name="f", layout=None, de_dot=False, cluster_name="c1")
    body = b'{"kind":"Event","involvedObject":{"kind":"Pod","name":"p"}}'
    event = orjson.loads(body)
    assert encoder.encode(event, body) == body[:-1] + b',"clusterName":"c1"}'
    enriched = EnrichedEvent(event)
    enriched["involvedObject"] = {**event["involvedObject"], "labels": {"a": "b"}}
    line = orjson.loads(encoder.encode(enriched, body))
    assert line["involvedObject"] == {"kind": "Pod", "name": "p", "labels": {"a": "b"}}
    assert line["clusterName"] == "c1"


# ---- through the whole pipeline ----------------------------------------------------------

async def test_burst_on_50_pods_costs_about_one_lookup_per_object(
        api: FakeApiServer, tmp_path: Path) -> None:
    deps = [api.objects.add("Deployment", f"d{i}") for i in range(5)]
    sets = [api.objects.add("ReplicaSet", f"d{i}-rs", owner=d) for i, d in enumerate(deps)]
    pods = [api.objects.add("Pod", f"d{i % 5}-rs-{i}", owner=sets[i % 5],
                            labels={"app": f"d{i % 5}"}) for i in range(50)]
    refs = [api.objects.reference(p) for p in pods]
    api.add_many(about(refs[i % 50], n=i) for i in range(10_000))
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"kubeQPS": 1000, "kubeBurst": 1000})
    out = tmp_path / "events.jsonl"
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) >= 10_000, within=45,
                         what="10000 events in the file")
    lines = read_lines(out)
    assert api.objects.lookups <= 100, api.objects.lookups
    labelled = [line for line in lines if "labels" in line["involvedObject"]]
    assert len(labelled) >= 9_000
    assert labelled[-1]["involvedObject"]["owner"]["kind"] == "Deployment"


async def test_failing_lookups_do_not_hold_events_back(api: FakeApiServer,
                                                       tmp_path: Path) -> None:
    pods = [api.objects.add("Pod", f"p{i}") for i in range(10)]
    api.objects.fail(500)
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        started = time.monotonic()
        api.add_many(about(api.objects.reference(p), n=n) for p in pods for n in range(20))
        await wait_until(lambda: len(read_lines(out)) >= 200, within=20, what="200 events")
        assert time.monotonic() - started < 5.0
        skipped_now = skipped(pipeline.metrics.registry, "api_error")
    assert skipped_now >= 150
    assert all("labels" not in line["involvedObject"] for line in read_lines(out))


async def test_route_rules_on_labels_see_enriched_events(api: FakeApiServer,
                                                         tmp_path: Path) -> None:
    pay = api.objects.add("Pod", "pay-1", labels={"team": "pay"})
    web = api.objects.add("Pod", "web-1", labels={"team": "web"})
    receivers = [{"name": name, "file": {"path": str(tmp_path / f"{name}.jsonl")}}
                 for name in ("pay", "all")]
    route = {"routes": [{"match": [{"labels": {"team": "^pay$"}, "receiver": "pay"},
                                   {"receiver": "all"}]}]}
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", receivers=receivers,
                          route=route)
    for n in range(5):
        api.add(about(api.objects.reference(pay), n=n))
        api.add(about(api.objects.reference(web), n=n))
    async with running(config):
        await wait_until(lambda: len(read_lines(tmp_path / "all.jsonl")) >= 10, within=20,
                         what="10 events for `all`")
        await wait_until(lambda: len(read_lines(tmp_path / "pay.jsonl")) >= 5, within=20,
                         what="5 events for `pay`")
    paid = read_lines(tmp_path / "pay.jsonl")
    assert len(paid) == 5
    assert {line["involvedObject"]["name"] for line in paid} == {"pay-1"}
    assert all(line["involvedObject"]["labels"] == {"team": "pay"} for line in paid)


async def test_omit_lookup_makes_no_lookups_and_writes_the_raw_body(
        api: FakeApiServer, tmp_path: Path) -> None:
    pod = api.objects.add("Pod", "p", labels={"app": "web"})
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"omitLookup": True})
    out = tmp_path / "events.jsonl"
    served = [api.add(about(api.objects.reference(pod), n=n)) for n in range(5)]
    async with running(config):
        await wait_until(lambda: len(read_lines(out)) >= 5, within=20, what="5 events")
    assert api.objects.lookups == 0
    assert not [r.path for r in api.requests if not r.is_events]
    assert out.read_bytes().splitlines() == [orjson.dumps(e) for e in served]
