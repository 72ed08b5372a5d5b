"""Enrichment from list+watch metadata caches, against the fake API server through the real
kubernetes_asyncio client: owner chains, a pod's node from the Pod table, tombstones, healing
after cuts and 410, API errors that never block delivery, the bound, and routes on labels that
see every event from the start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from eventpipe.enrich import (
    EnrichConfig,
    EnrichedEvent,
    Enricher,
    EnrichSettings,
    InformerSettings,
)
from eventpipe.enrich.caches import MetadataCaches
from eventpipe.enrich.client import KubeObjectClient
from eventpipe.kube.client import connect
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    http_get,
    read_lines,
    running,
    sample_values,
    scrape,
    wait_until,
    wait_until_async,
    write_config,
)
from tests.test_enrich import about, workloads

Obj = dict[str, Any]
FAST = InformerSettings(backoff_initial=0.05, backoff_max=0.2)


@pytest.fixture
async def client(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[Any]:
    api_client = await connect(str(tmp_path / "kubeconfig"))
    yield api_client
    await api_client.close()


@pytest.fixture
async def build(client: Any) -> AsyncIterator[Callable[..., Enricher]]:
    """Enrichers with started metadata caches (closed after the test)."""
    made: list[Enricher] = []

    def make(registry: CollectorRegistry | None = None, namespaces: list[str] | None = None,
             **config: Any) -> Enricher:
        kube = KubeObjectClient(client, timeout=5.0)
        registry = registry or CollectorRegistry()
        caches = MetadataCaches(kube, EnrichConfig.model_validate(config),
                                namespaces=namespaces or [""], settings=FAST, registry=registry)
        enricher = Enricher(kube, settings=EnrichSettings(qps=1000.0, burst=1000, deadline=2.0),
                            registry=registry, caches=caches)
        caches.start()
        made.append(enricher)
        return enricher

    yield make
    for enricher in made:
        assert enricher.caches is not None
        await enricher.caches.close()
        await enricher.close()


async def synced(enricher: Enricher) -> MetadataCaches:
    caches = enricher.caches
    assert caches is not None
    async with asyncio.timeout(10):
        while not all(i.synced.is_set() for i in caches.informers):
            await caches.wait_settled()
            await asyncio.sleep(0)
    return caches


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for a cache change (the informers run in this loop)."""
    await wait_until(predicate, within=within, what="the caches to change")


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_owner_chains_and_node_come_from_the_caches_without_lookups(
        api: FakeApiServer, build: Callable[..., Enricher]) -> None:
    objs = workloads(api)
    registry = CollectorRegistry()
    enricher = build(registry)
    await synced(enricher)
    events = {k: about(api.objects.reference(o)) for k, o in objs.items()}
    events["node"]["involvedObject"]["uid"] = "node-1"  # the kubelet's Node references do this
    await enricher.prefetch(events.values())
    out = {k: enricher.enrich(e)["involvedObject"] for k, e in events.items()}
    assert out["web"]["owner"] == {"kind": "Deployment", "name": "web"}
    assert out["web"]["labels"] == {"app": "web"} and out["web"]["node"] == "node-1"
    assert out["web"]["annotations"] == {"team.example.com/owner": "pay"}
    assert out["job"]["owner"] == {"kind": "CronJob", "name": "backup"}
    assert out["db"]["owner"] == {"kind": "StatefulSet", "name": "db"}
    assert out["agent"]["owner"] == {"kind": "DaemonSet", "name": "agent"}
    assert "owner" not in out["bare"] and "node" not in out["db"]
    assert out["node"]["labels"] == {"topology.kubernetes.io/zone": "a"}
    assert api.objects.lookups == 0, "no GET for watched kinds"
    lists = [p for verb, p in api.objects.object_requests if verb == "list"]
    assert sorted(lists) == sorted(i.path for i in enricher.caches.informers)  # type: ignore
    assert sample(registry, "eventpipe_enrich_cache_objects", kind="Pod") == 5
    enricher.flush_counts()
    assert sample(registry, "eventpipe_enrich_enriched_total", source="watch") == 6


async def test_a_pod_bound_later_gets_its_node_and_new_labels(
        api: FakeApiServer, build: Callable[..., Enricher]) -> None:
    pod = api.objects.add("Pod", "late", labels={"v": "1"})
    enricher = build()
    caches = await synced(enricher)
    event = about(api.objects.reference(pod))
    assert "node" not in enricher.enrich(event)["involvedObject"]
    api.objects.bind(pod, "node-7")
    api.objects.set_labels(pod, {"v": "2"})
    event = about(api.objects.reference(pod))  # names the newer resourceVersion
    await enricher.prefetch([event])  # waits for the cache to reach it
    involved = enricher.enrich(event)["involvedObject"]
    assert involved["node"] == "node-7" and involved["labels"] == {"v": "2"}
    assert caches.store.get(pod["metadata"]["uid"]) is not None


async def test_a_deleted_pods_late_events_keep_its_labels_and_are_marked(
        api: FakeApiServer, build: Callable[..., Enricher]) -> None:
    dep = api.objects.add("Deployment", "web")
    rs = api.objects.add("ReplicaSet", "web-1", owner=dep)
    pod = api.objects.add("Pod", "web-1-a", owner=rs, labels={"app": "web"}, node="n1")
    enricher = build()
    caches = await synced(enricher)
    ref = api.objects.reference(pod)
    api.objects.delete(pod)
    await until(lambda: caches.store.tombstones == 1)
    involved = enricher.enrich(about(ref, reason="Killing"))["involvedObject"]
    assert involved["deleted"] is True and involved["labels"] == {"app": "web"}
    assert involved["owner"] == {"kind": "Deployment", "name": "web"}
    assert involved["node"] == "n1"
    assert api.objects.lookups == 0
    caches.store.expire(caches.store.tombstone_ttl + 1e9)
    late = about(ref, reason="Killing")
    await enricher.prefetch([late])  # no longer cached: one GET, a 404
    involved = enricher.enrich(late)["involvedObject"]
    assert involved == {**ref, "deleted": True}, "past the grace period only the mark stays"
    assert api.objects.lookups == 1


async def test_a_cut_watch_and_a_410_heal_without_losing_label_updates(
        api: FakeApiServer, build: Callable[..., Enricher]) -> None:
    pod = api.objects.add("Pod", "p", labels={"v": "1"})
    other = api.objects.add("Pod", "q", labels={"v": "1"})
    registry = CollectorRegistry()
    enricher = build(registry)
    caches = await synced(enricher)
    uid = pod["metadata"]["uid"]
    api.objects.cut_watches()
    api.objects.set_labels(pod, {"v": "2"})  # while the watch is down
    await until(lambda: (caches.store.get(uid) or pod).labels == {"v": "2"})  # type: ignore
    before = sum(i.relists for i in caches.informers)
    api.objects.cut_watches()
    api.objects.set_labels(pod, {"v": "3"})
    api.objects.delete(other)
    api.objects.compact()  # the resume point is gone: 410, relist
    await until(lambda: sum(i.relists for i in caches.informers) > before)
    await until(lambda: (caches.store.get(uid) or pod).labels == {"v": "3"})  # type: ignore
    gone = caches.store.get(other["metadata"]["uid"])
    assert gone is not None and gone.deleted, "the relist no longer returned it: deleted"
    assert sample(registry, "eventpipe_enrich_cache_errors_total", kind="Pod",
                  reason="gone") >= 1


@pytest.mark.parametrize("code", [429, 500])
async def test_api_errors_on_the_watches_never_block_delivery(
        api: FakeApiServer, tmp_path: Path, code: int) -> None:
    pods = [api.objects.add("Pod", f"p{i}", labels={"team": "pay"}) for i in range(5)]
    api.objects.fail(code)
    route = {"routes": [{"match": [{"labels": {"team": "pay"}, "receiver": "dump"}]}]}
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", route=route,
                          extra={"enrich": {"syncTimeout": "1s"}})
    out = tmp_path / "events.jsonl"
    async with running(config):
        api.objects.fail(None)  # GETs work: the fallback enriches what the cache could not
        api.add_many(about(api.objects.reference(p), n=n) for p in pods for n in range(4))
        await until(lambda: len(read_lines(out)) >= 20, within=20)
    assert {line["involvedObject"]["labels"]["team"] for line in read_lines(out)} == {"pay"}


async def test_a_forbidden_kind_degrades_with_one_log_line_and_a_metric(
        api: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    api.objects.forbid("replicasets")
    dep = api.objects.add("Deployment", "web")
    pod = api.objects.add("Pod", "web-1-a", labels={"app": "web"},
                          owner=api.objects.add("ReplicaSet", "web-1", owner=dep))
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"watch": {"backoffInitial": "50ms", "backoffMax": "200ms"}})
    out = tmp_path / "events.jsonl"
    with caplog.at_level(logging.ERROR, logger="eventpipe.enrich"):
        async with running(config) as pipeline:
            api.add(about(api.objects.reference(pod)))
            await until(lambda: len(read_lines(out)) >= 1, within=20)
            status, body = await http_get(pipeline.http.port, "/readyz")
            await until(lambda: sum(1 for v, p in api.objects.object_requests
                                    if p.endswith("/replicasets")) >= 3)
            samples = await scrape(pipeline.http.port)
    assert status == 200 and "forbidden: cannot list/watch replicasets.apps" in body
    assert read_lines(out)[0]["involvedObject"]["labels"] == {"app": "web"}
    forbidden = [r for r in caplog.records if "replicasets.apps" in r.getMessage()]
    assert len(forbidden) == 1, "logged once, not on every retry"
    assert sample_values(samples, "eventpipe_enrich_cache_errors_total", kind="ReplicaSet",
                         reason="http_403")[0] >= 2
    assert sample_values(samples, "eventpipe_enrich_cache_synced", kind="ReplicaSet") == [0]
    assert sample_values(samples, "eventpipe_enrich_cache_synced", kind="Pod") == [1]


async def test_at_the_bound_objects_fall_back_to_lookups(
        api: FakeApiServer, build: Callable[..., Enricher]) -> None:
    pods = [api.objects.add("Pod", f"p{i}", labels={"n": str(i)}) for i in range(10)]
    registry = CollectorRegistry()
    enricher = build(registry, maxObjects=4, watchKinds=["Pod"])
    caches = await synced(enricher)
    assert len(caches.store) == 4 and caches.store.refused == 6
    events = [about(api.objects.reference(p)) for p in pods]
    await enricher.prefetch(events)
    labels = [enricher.enrich(e)["involvedObject"].get("labels") for e in events]
    assert labels == [{"n": str(i)} for i in range(10)]
    assert api.objects.lookups == 6
    assert sample(registry, "eventpipe_enrich_cache_full_total") == 6


async def test_routes_on_labels_get_every_event_from_the_first_second(
        api: FakeApiServer, tmp_path: Path) -> None:
    """2,000 pods, events about all of them already waiting when eventpipe starts: the route
    on labels misses none (the workers wait for the caches), and no object is fetched."""
    deps = [api.objects.add("Deployment", f"d{i}", labels={"team": "pay" if i % 2 else "web"})
            for i in range(20)]
    sets = [api.objects.add("ReplicaSet", f"d{i}-rs", owner=d) for i, d in enumerate(deps)]
    pods = [api.objects.add("Pod", f"d{i % 20}-rs-{i}", owner=sets[i % 20], node="n1",
                            labels={"team": "pay" if i % 20 % 2 else "web"})
            for i in range(2000)]
    api.add_many(about(api.objects.reference(p), n=i) for i, p in enumerate(pods))
    receivers = [{"name": "pay", "file": {"path": str(tmp_path / "pay.jsonl")}}]
    route = {"routes": [{"match": [{"labels": {"team": "^pay$"}, "receiver": "pay"}]}]}
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", receivers=receivers,
                          route=route)
    async with running(config):
        await until(lambda: len(read_lines(tmp_path / "pay.jsonl")) >= 1000, within=60)
    paid = read_lines(tmp_path / "pay.jsonl")
    assert len(paid) == 1000
    assert all(p["involvedObject"]["owner"]["kind"] == "Deployment" for p in paid)
    assert all(p["involvedObject"]["node"] == "n1" for p in paid)
    assert api.objects.lookups == 0
    assert len(api.objects.object_requests) <= 2 * 8 + 4  # a list and a watch per kind


async def test_a_layout_on_labels_waits_for_the_caches_like_a_route(
        api: FakeApiServer, tmp_path: Path) -> None:
    """2,000 pods, events about all of them already waiting when eventpipe starts: a receiver
    whose layout reads the labels and owner (no route on them) writes every event with both,
    from the first line on; a receiver without such a template does not wait."""
    deps = [api.objects.add("Deployment", f"d{i}") for i in range(20)]
    sets = [api.objects.add("ReplicaSet", f"d{i}-rs", owner=d) for i, d in enumerate(deps)]
    pods = [api.objects.add("Pod", f"d{i % 20}-rs-{i}", owner=sets[i % 20],
                            labels={"team": f"t{i % 20}"}) for i in range(2000)]
    api.add_many(about(api.objects.reference(p), n=i) for i, p in enumerate(pods))
    layout = {"team": "{{ .InvolvedObject.Labels.team }}",
              "owner": "{{ .InvolvedObject.Owner.Name }}", "pod": "{{ .InvolvedObject.Name }}"}
    receivers = [{"name": "teams", "file": {"path": str(tmp_path / "teams.jsonl"),
                                            "layout": layout}}]
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", receivers=receivers,
                          route={"routes": [{"match": [{"receiver": "teams"}]}]})
    api.objects.hold_lists()  # the caches list slowly: the events are stored first
    async with running(config) as pipeline:
        async def stored() -> bool:
            samples = await scrape(pipeline.http.port)
            return sum(sample_values(samples, "eventpipe_spool_events_total")) >= 2000
        await wait_until_async(stored, within=60)
        assert not (tmp_path / "teams.jsonl").exists() or not read_lines(
            tmp_path / "teams.jsonl"), "nothing written before the caches synced"
        api.objects.hold_lists(False)
        await until(lambda: len(read_lines(tmp_path / "teams.jsonl")) >= 2000, within=60)
    lines = read_lines(tmp_path / "teams.jsonl")
    assert len(lines) == 2000
    expected = {p["metadata"]["name"]: (p["metadata"]["labels"]["team"],
                                        f"d{i % 20}") for i, p in enumerate(pods)}
    assert [(line["team"], line["owner"]) for line in lines] == [
        expected[line["pod"]] for line in lines]
    assert api.objects.lookups == 0


def test_which_receivers_wait_for_the_caches() -> None:
    from eventpipe.config import Receiver
    from eventpipe.delivery.settings import delivery_settings

    def waits(**sink: Any) -> bool:
        return delivery_settings(Receiver.model_validate({"name": "r", **sink})
                                 ).wait_for_metadata

    assert waits(file={"path": "x", "layout": {"a": "{{ .InvolvedObject.Labels.app }}"}})
    assert waits(file={"path": "x", "layout": "{{ toJson . }}"})
    assert waits(webhook={"endpoint": "http://h", "headers": {
        "X-Team": "{{ index .InvolvedObject.Annotations \"team\" }}"}})
    assert not waits(file={"path": "x", "layout": {"a": "{{ .InvolvedObject.Name }}"}})
    assert not waits(file={"path": "x"})
    assert not waits(webhook={"endpoint": "http://h", "headers": {"X-Reason": "{{ .Reason }}"}})


def test_spliced_lines_equal_the_serialised_enriched_event() -> None:
    from eventpipe.enrich.apply import ObjectInfo, apply
    from eventpipe.sinks.encoding import LineEncoder, splice_enrichment

    info = ObjectInfo(uid="u1", resource_version="7", kind="Pod", name="p", labels={"a": "b"},
                      node="n1", deleted=True)
    encoder = LineEncoder(name="f", layout=None, de_dot=False, cluster_name="c1")
    for ref in ({"kind": "Pod", "name": "p", "uid": "u1"}, {}):
        event = {"kind": "Event", "involvedObject": ref, "message": '"involvedObject":{ quoted'}
        body = orjson.dumps(event)
        enriched = apply(event, "involvedObject", ref, info, lambda uid: None, generation=0)
        assert isinstance(enriched, EnrichedEvent)
        assert splice_enrichment(enriched, body) is not None
        line = orjson.loads(encoder.encode(enriched, body))
        assert line == {**enriched, "clusterName": "c1"}
    # The key text twice (a nested copy): not spliced, serialised.
    ref = {"uid": "u1"}
    event = {"kind": "Event", "involvedObject": ref, "x": {"involvedObject": {}}}
    enriched = apply(event, "involvedObject", ref, info, lambda uid: None, 0)
    assert isinstance(enriched, EnrichedEvent)
    assert splice_enrichment(enriched, orjson.dumps(event)) is None
    assert orjson.loads(encoder.encode(enriched, orjson.dumps(event))) == {
        **enriched, "clusterName": "c1"}


async def test_namespaced_mode_watches_each_namespace_and_no_nodes(
        api: FakeApiServer, build: Callable[..., Enricher]) -> None:
    pod = api.objects.add("Pod", "p", namespace="team-a", labels={"app": "a"})
    api.objects.add("Pod", "elsewhere", namespace="team-c", labels={"app": "c"})
    enricher = build(namespaces=["team-a", "team-b"])
    caches = await synced(enricher)
    paths = sorted(i.path for i in caches.informers)
    assert "/api/v1/nodes" not in paths and len(paths) == 14  # 7 namespaced kinds x 2
    assert "/api/v1/namespaces/team-a/pods" in paths
    assert len(caches.store) == 1, "only the watched namespaces are cached"
    event = about(api.objects.reference(pod))
    assert enricher.enrich(event)["involvedObject"]["labels"] == {"app": "a"}
