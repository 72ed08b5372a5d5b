"""The elasticsearch / opensearch receivers against a fake `_bulk` endpoint (tests/fakes).

Unit tests drive the sink (and the real driver with a real spool) directly; end-to-end tests
run eventpipe in-process against the fake API server with the corpus events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from eventpipe.core.timestamps import last_seen
from eventpipe.delivery.contract import PermanentSinkError, RetriableSinkError, Sink
from eventpipe.delivery.driver import Delivery, DeliverySettings, NewData, SinkWorker
from eventpipe.metrics import Metrics
from eventpipe.sinks.elasticsearch.bulk import split_by_size
from eventpipe.sinks.elasticsearch.config import ElasticsearchSinkConfig, cloud_host
from eventpipe.sinks.elasticsearch.index import IndexNamer, compile_go_layout
from eventpipe.sinks.elasticsearch.sink import ElasticsearchSink
from eventpipe.spool import Spool
from eventpipe.watch.normalize import to_record
from tests.fakeapi import FakeApiServer
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.pipeline_harness import (
    corpus_files,
    k8s_event,
    read_lines,
    running,
    wait_until,
    wait_until_async,
    write_config,
)
from tests.test_pipeline_e2e import served_versions
from tests.test_sink_loki import stored_rows

NOW = datetime(2030, 1, 1, tzinfo=UTC).timestamp()  # far from every event time


def ev(i: int, *, last: str = "2026-11-23T10:00:00Z", ns: str = "default",
       **extra: Any) -> dict[str, Any]:
    event = k8s_event(f"pod-{i}", namespace=ns, uid=f"uid-{i}")
    event["metadata"]["resourceVersion"] = str(100 + i)
    event["lastTimestamp"] = last
    event.update(extra)
    return event


def sink(es: FakeElasticsearch | None = None, **kw: Any) -> ElasticsearchSink:
    kw.setdefault("index_format", "kube-events-{2006-01-02}")
    hosts = kw.pop("hosts", [es.url] if es else ["http://127.0.0.1:9"])
    return ElasticsearchSink(name="es", hosts=hosts, clock=lambda: NOW, **kw)


def encode(s: ElasticsearchSink, event: dict[str, Any]) -> bytes:
    return s.encode(event, orjson.dumps(event))


@pytest.fixture
async def es() -> AsyncIterator[FakeElasticsearch]:
    async with FakeElasticsearch() as server:
        yield server


# ---- index names, _id, framing --------------------------------------------------------------

def test_go_time_layouts() -> None:
    t = datetime(2026, 3, 4, 15, 6, 7, 891000, tzinfo=UTC)
    assert compile_go_layout("2006-01-02")(t) == "2026-03-04"
    assert compile_go_layout("2006.01.02.15")(t) == "2026.03.04.15"
    assert compile_go_layout("Jan _2 Mon 3:04:05PM")(t) == "Mar  4 Wed 3:06:07PM"
    assert compile_go_layout("06-1-2 002 .000 .999")(t) == "26-3-4 063 .891 .891"
    assert compile_go_layout("January Monday Z07:00 x")(t) == "March Wednesday Z x"


def test_index_is_named_from_the_event_time_not_now() -> None:
    namer = IndexNamer(index="", index_format="kube-events-{2006-01-02}", where="t",
                       clock=lambda: NOW)
    event = ev(1, last="2026-11-23T23:59:59Z")
    assert namer.name(event, last_seen(event)) == "kube-events-2026-11-23"
    v1: dict[str, object] = {"metadata": {"uid": "x", "creationTimestamp": "2026-01-01T00:00:00Z"},
          "series": {"lastObservedTime": "2026-02-03T04:05:06.123456Z"}}
    assert namer.name(v1, last_seen(v1)) == "kube-events-2026-02-03"
    assert namer.name({}, None) == "kube-events-2030-01-01"  # no time at all: now
    static = IndexNamer(index="kube-events", index_format="", where="t", clock=lambda: NOW)
    assert not static.needs_event and static.name(event, None) == "kube-events"


def test_opensearch_template_index_format() -> None:
    namer = IndexNamer(index="", where="t", clock=lambda: NOW,
                       index_format="kube-events-{{ .InvolvedObject.Namespace }}-{2006-01-02}")
    event = ev(1, ns="kube-system")
    assert namer.name(event, last_seen(event)) == "kube-events-kube-system-2026-11-23"


def test_item_framing_id_and_options() -> None:
    event = ev(7)
    event["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}
    lines = encode(sink(), event).split(b"\n")
    assert lines[2] == b"" and len(lines) == 3  # two lines, each ending in \n
    assert orjson.loads(lines[0]) == {"index": {"_index": "kube-events-2026-11-23",
                                                "_id": "uid-7-107"}}
    assert orjson.loads(lines[1]) == event
    lines = encode(sink(use_event_id=True, doc_type="kube-event", de_dot=True,
                        cluster_name="c1"), event).split(b"\n")
    assert orjson.loads(lines[0])["index"] == {"_index": "kube-events-2026-11-23",
                                               "_id": "uid-7", "_type": "kube-event"}
    doc = orjson.loads(lines[1])
    assert doc["metadata"]["labels"] == {"app_kubernetes_io/name": "web"}
    assert doc["clusterName"] == "c1"
    layout = {"reason": "{{ .Reason }}", "name": "{{ .InvolvedObject.Name }}"}
    lines = encode(sink(layout=layout, index="static", index_format=""), event).split(b"\n")
    assert orjson.loads(lines[1]) == {"reason": "BackOff", "name": "pod-7"}
    with pytest.raises(PermanentSinkError, match=r"metadata\.uid"):
        encode(sink(), {"metadata": {}})


def test_split_by_size() -> None:
    sizes = [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 200, b"e" * 10]
    assert split_by_size(sizes, 100) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert split_by_size([], 100) == []


def test_config_model_and_cloud_id() -> None:
    cfg = ElasticsearchSinkConfig.model_validate({"hosts": ["http://a:9200"], "index": "k"})
    assert cfg.max_bulk_bytes == 10 * 1024 * 1024 and cfg.use_event_id is False
    for bad in ({"hosts": ["http://a"]}, {"index": "k"}, {"hosts": ["a:9200"], "index": "k"},
                {"hosts": ["http://a"], "index": "k", "bogus": 1}):
        with pytest.raises(ValueError):
            ElasticsearchSinkConfig.model_validate(bad)
    import base64
    cid = "dep:" + base64.b64encode(b"us-east-1.aws.found.io$abc123$kib").decode()
    assert cloud_host(cid) == "https://abc123.us-east-1.aws.found.io:443"
    assert ElasticsearchSinkConfig.model_validate({"cloudID": cid, "index": "k"}).urls() == [
        "https://abc123.us-east-1.aws.found.io:443"]


# ---- requests against the fake ------------------------------------------------------------

async def test_bulk_stores_documents_with_auth_and_headers(
        es: FakeElasticsearch, cleanup: contextlib.AsyncExitStack) -> None:
    es.username, es.password = "elastic", "s3cret-pw"
    s = sink(es, username="elastic", password="s3cret-pw", headers={"X-Team": "a"})
    cleanup.push_async_callback(s.close)
    await s.start()
    events = [ev(i, last=f"2026-11-{20 + i % 3}T10:00:00Z") for i in range(9)]
    assert await s.send([encode(s, e) for e in events]) == []
    assert len(es.requests) == 1 and es.requests[0].items == 9
    assert es.requests[0].headers["X-Team"] == "a"
    assert sorted(es.docs) == ["kube-events-2026-11-20", "kube-events-2026-11-21",
                               "kube-events-2026-11-22"]
    assert es.docs["kube-events-2026-11-21"]["uid-1-101"] == events[1]
    # Sent again (a retry): overwritten, not duplicated.
    assert await s.send([encode(s, e) for e in events]) == []
    assert len(es.all_docs()) == 9 and set(es.versions.values()) == {2}
    await s.close()
    # Wrong password: retriable (an operator fixes it), and no secret in the message.
    bad = sink(es, hosts=[es.url.replace("http://", "http://elastic:wrong-pw@")])
    cleanup.push_async_callback(bad.close)
    with pytest.raises(RetriableSinkError) as info:
        await bad.send([encode(bad, events[0])])
    assert "401" in str(info.value) and "wrong-pw" not in str(info.value)
    es.api_key = "aWQ6a2V5"
    keyed = sink(es, api_key="aWQ6a2V5")
    cleanup.push_async_callback(keyed.close)
    assert await keyed.send([encode(keyed, events[0])]) == []
    assert es.requests[-1].headers["Authorization"] == "ApiKey aWQ6a2V5"


async def test_whole_request_failures_are_classified(
        es: FakeElasticsearch, cleanup: contextlib.AsyncExitStack) -> None:
    s = sink(es)
    cleanup.push_async_callback(s.close)
    payloads = [encode(s, ev(i)) for i in range(3)]
    es.fail_next(429, retry_after="7")
    with pytest.raises(RetriableSinkError) as info:
        await s.send(payloads)
    assert info.value.retry_after == 7.0
    es.fail_next(500)
    with pytest.raises(RetriableSinkError):
        await s.send(payloads)
    es.fail_next(400)
    failures = await s.send(payloads)
    assert [f.index for f in failures] == [0, 1, 2]
    assert not any(f.error.retriable for f in failures)
    assert await s.send(payloads) == [] and len(es.all_docs()) == 3


async def test_item_results_with_size_split_and_413(
        es: FakeElasticsearch, cleanup: contextlib.AsyncExitStack) -> None:
    es.fail_items(lambda i, d, doc: d == "uid-2-102", status=429,
                  error_type="es_rejected_execution_exception", reason="queue full")
    es.fail_items(lambda i, d, doc: d == "uid-5-105", status=400,
                  error_type="mapper_parsing_exception", reason="failed to parse field [count]")
    es.max_content_length = 6000
    s = sink(es, max_bulk_bytes=8000)
    cleanup.push_async_callback(s.close)
    # Through the driver, which re-sends what a 413 refused in halves; one attempt each, so a
    # retriable item "gives up" and a permanent one carries its error.
    delivery = Delivery(s, router=None, metrics=Metrics(),
                        settings=DeliverySettings(max_attempts=1))
    payloads, rows, dead = delivery.encode(stored_rows([ev(i) for i in range(20)]))
    failed, completed = await delivery.send(payloads, rows)
    assert completed and not dead
    errors = {seq - 1: error for seq, error in failed}
    assert {i: error.startswith("gave up") for i, error in errors.items()} == {2: True, 5: False}
    assert "mapper_parsing_exception: failed to parse field [count]" in errors[5]
    assert any(r.status == 413 for r in es.requests)  # split further after 413
    assert len(es.all_docs()) == 18
    assert all(r.size <= 6000 for r in es.requests if r.status == 200)


async def test_hosts_round_robin_and_fail_over(
        es: FakeElasticsearch, cleanup: contextlib.AsyncExitStack) -> None:
    other = await cleanup.enter_async_context(FakeElasticsearch())  # stopped after the test
    s = sink(hosts=["http://127.0.0.1:9", es.url, other.url])
    cleanup.push_async_callback(s.close)
    for i in range(6):
        assert await s.send([encode(s, ev(i))]) == []
    assert len(es.requests) + len(other.requests) == 6
    assert len(es.requests) >= 2 and len(other.requests) >= 2
    # The outage under test; the fixtures stop both again at the end (stop is idempotent).
    await other.stop()
    await es.stop()
    with pytest.raises(RetriableSinkError):
        await s.send([encode(s, ev(9))])


@contextlib.asynccontextmanager
async def driven(tmp_path: Path, s: Sink[Any]) -> AsyncIterator[tuple[Spool, NewData]]:
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(s.close)  # the worker closes it too; idempotent
        spool = await Spool.open(tmp_path / "spool.db")
        stack.push_async_callback(spool.close)
        stopping, new_data = asyncio.Event(), NewData()
        settings = DeliverySettings(initial_backoff=0.01, max_backoff=0.05)
        worker = SinkWorker(Delivery(s, router=None, settings=settings, metrics=Metrics(),
                                     stopping=stopping), spool=spool, new_data=new_data,
                            settings=settings, metrics=Metrics(), stopping=stopping)
        task = asyncio.create_task(worker.run())
        try:
            yield spool, new_data
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)


async def test_driver_retries_only_failed_items_and_dead_letters_the_rest(
        es: FakeElasticsearch, tmp_path: Path) -> None:
    seen: set[str] = set()

    def first_time(index: str, doc_id: str, doc: dict[str, Any]) -> bool:
        fresh = doc["involvedObject"]["name"].endswith("3") and doc_id not in seen
        seen.add(doc_id)
        return fresh

    es.fail_items(first_time, status=429, error_type="es_rejected_execution_exception",
                  reason="rejected")
    es.fail_items(lambda i, d, doc: d == "uid-4-104", status=400,
                  error_type="mapper_parsing_exception", reason="failed to parse")
    events = [ev(i) for i in range(30)]
    async with driven(tmp_path, sink(es)) as (spool, new_data):
        await spool.append([to_record(e, orjson.dumps(e)) for e in events], stream="s",
                           resource_version="1")
        new_data.notify()
        await wait_until(lambda: len(es.all_docs()) == 29, what="29 documents")

        async def acked() -> bool:
            return await spool.cursor("es") == 30

        await wait_until_async(acked, what="the batch acked")
        dead = await spool.dead_letters("es")
    assert [r.items for r in es.requests] == [30, 3]  # uid-3, uid-13, uid-23 once more
    assert set(es.versions.values()) == {1}
    assert len(dead) == 1 and "mapper_parsing_exception" in dead[0][2]


# ---- end to end through eventpipe ----------------------------------------------------------

def es_receiver(es: FakeElasticsearch, **extra: Any) -> dict[str, Any]:
    return {"name": "es", "elasticsearch": {"hosts": [es.url], "index": "kube-events",
                                            "indexFormat": "kube-events-{2006-01-02}",
                                            **extra},
            "batch": {"maxEvents": 200, "maxWait": "20ms"},
            "retry": {"initialBackoff": "20ms", "maxBackoff": "200ms"}}


def both(tmp_path: Path, es: FakeElasticsearch, **extra: Any) -> Path:
    return write_config(
        tmp_path, kubeconfig=tmp_path / "kubeconfig",
        receivers=[{"name": "dump", "file": {"path": str(tmp_path / "events.jsonl")}},
                   es_receiver(es, **extra)],
        route={"routes": [{"match": [{"receiver": "dump"}]}, {"match": [{"receiver": "es"}]}]})


def expected_index(obj: dict[str, Any]) -> str:
    seen = last_seen(obj)
    assert seen is not None
    return "kube-events-" + datetime.fromtimestamp(seen, UTC).strftime("%Y-%m-%d")


async def test_corpus_arrives_with_version_ids_in_daily_indices(
        api: FakeApiServer, es: FakeElasticsearch, tmp_path: Path) -> None:
    api.load_corpus(corpus_files())
    latest = {uid: (rv, obj) for (uid, rv), obj in served_versions(api).items()}
    async with running(both(tmp_path, es)):
        await wait_until(lambda: len(es.all_docs()) >= len(latest), within=60,
                         what=f"{len(latest)} documents")
    docs = es.all_docs()
    assert len(docs) == len(latest)
    assert len(es.docs) > 3  # the corpus spans several days
    for uid, (rv, obj) in latest.items():
        assert docs[(expected_index(obj), f"{uid}-{rv}")] == obj


async def test_partial_failures_end_to_end(api: FakeApiServer, es: FakeElasticsearch,
                                           tmp_path: Path) -> None:
    seen: set[str] = set()

    def first_time(index: str, doc_id: str, doc: dict[str, Any]) -> bool:
        fresh = doc["involvedObject"]["name"].endswith("7") and doc_id not in seen
        seen.add(doc_id)
        return fresh

    es.fail_items(first_time, status=503, error_type="unavailable_shards_exception",
                  reason="primary shard is not active")
    es.fail_items(lambda i, d, doc: doc["involvedObject"]["name"] == "pod-5", status=400,
                  error_type="mapper_parsing_exception", reason="failed to parse field")
    async with running(both(tmp_path, es)):
        for i in range(60):
            api.add(ev(i))
        await wait_until(lambda: len(es.all_docs()) == 59, what="59 documents")
        await wait_until(lambda: len(read_lines(tmp_path / "events.jsonl")) == 60,
                         what="file")
    spool = await Spool.open(tmp_path / "spool.db")
    try:
        dead = await spool.dead_letters("es")
    finally:
        await spool.close()
    assert len(dead) == 1 and "mapper_parsing_exception: failed to parse field" in dead[0][2]
    assert sum(es.versions.values()) == 59  # retried items were not written twice
    assert len(seen) == 60


async def test_outage_loses_nothing_and_never_slows_the_file(
        api: FakeApiServer, es: FakeElasticsearch, tmp_path: Path) -> None:
    lag_seen: list[float] = []
    async with running(both(tmp_path, es)) as pipeline:
        lag = pipeline.metrics.sink_lag_events.labels("es")
        es.on_bulk = lambda _req: lag_seen.append(lag._value.get())
        out = tmp_path / "events.jsonl"
        for i in range(10):
            api.add(ev(i))
        await wait_until(lambda: len(es.all_docs()) == 10, what="first 10")
        await es.stop()
        for i in range(10, 1010):
            api.add(ev(i))
        await wait_until(lambda: len(read_lines(out)) == 1010, what="file has all while down")
        assert len(es.all_docs()) == 10
        await es.start()
        await wait_until(lambda: len(es.all_docs()) == 1010, what="all after the outage")
        await wait_until(lambda: lag._value.get() == 0, what="lag back to 0")
    assert max(lag_seen) > 0
    assert {d for _, d in es.all_docs()} == {f"{u}-{rv}" for u, rv in served_versions(api)}


README_ES = """
hosts:
  - http://localhost:9200
index: kube-events
# Ca be used optionally for time based indices, accepts Go time formatting directives
indexFormat: "kube-events-{2006-01-02}"
username: # optional
password: # optional
cloudID: # optional
apiKey: # optional
headers: # optional，Can be used to append the additional key/value pairs into the request headers
# If set to true, it allows updating the same document in ES (might be useful handling count)
useEventID: true
# Type should be only used for clusters Version 6 and lower.
# type: kube-event
# If set to true, all dots in labels and annotation keys are replaced by underscores.
deDot: true
layout: # Optional
tls: # optional, advanced options for tls
  insecureSkipVerify: true # optional, if set to true, the tls cert won't be verified
  serverName: # optional, the domain, the certificate was issued for
  caFile: # optional, path to the CA file of the trusted authority the cert was signed with
"""
README_OS = """
hosts:
  - http://localhost:9200
index: kube-events
# Can be used optionally for time based indices, accepts templates and Go time formatting
indexFormat: "kube-events-{{ .InvolvedObject.Namespace }}-{2006-01-02}"
username: # optional
password: # optional
# If set to true, it allows updating the same document in ES (might be useful handling count)
useEventID: true
# type: kube-event
deDot: true
layout: # Optional
tls: # optional, advanced options for tls
  insecureSkipVerify: true
  serverName: # optional
  caFile: # optional
"""


@pytest.mark.parametrize(("key", "snippet", "index"), [
    ("elasticsearch", README_ES, "kube-events-2026-11-23"),
    ("opensearch", README_OS, "kube-events-team-a-2026-11-23")])
async def test_resmo_readme_examples_load_and_run(api: FakeApiServer, es: FakeElasticsearch,
                                                  tmp_path: Path, key: str, snippet: str,
                                                  index: str) -> None:
    # resmo's README writes `useEventID: true|false`; the placeholder is filled with `true`.
    sink_cfg = yaml.safe_load(snippet.replace("http://localhost:9200", es.url))
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          receivers=[{"name": "dump", key: sink_cfg}])
    async with running(config):
        uid = api.add(ev(1, ns="team-a"))["metadata"]["uid"]
        # The Event repeats five minutes later, the same day. Not `bump_count`: that stamps the
        # wall clock, and the index date is the event's last-seen time, so the second version
        # would land in today's index instead (the test then only passed on the day it was
        # written).
        api.modify(uid, {"count": 2, "lastTimestamp": "2026-11-23T10:05:00Z"})
        await wait_until(lambda: es.versions.get((index, uid)) == 2, what="two versions")
    # useEventID: one document per Event, the latest version wins.
    assert list(es.all_docs()) == [(index, uid)]
    assert es.docs[index][uid]["count"] == 2
