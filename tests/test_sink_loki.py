"""The Loki receiver: labels, timestamps, request splitting, Loki's answers through the driver,
and end to end (fake API server -> eventpipe in-process -> fake Loki)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from eventpipe.delivery.contract import PermanentSinkError, RetriableSinkError
from eventpipe.delivery.driver import Delivery, DeliverySettings
from eventpipe.metrics import Metrics
from eventpipe.sinks.loki.config import LokiSinkConfig, push_url, sanitize_label_name
from eventpipe.sinks.loki.encode import entry_timestamp
from eventpipe.sinks.loki.request import build_body, plan_chunks
from eventpipe.sinks.loki.sink import LokiSink
from eventpipe.spool import Spool
from eventpipe.spool.rows import StoredRow
from tests.fakeapi import FakeApiServer
from tests.fakes.loki import FakeLoki
from tests.pipeline_harness import (
    corpus_files,
    http_get,
    k8s_event,
    metric_samples,
    read_lines,
    running,
    sample_values,
    wait_until,
    wait_until_async,
    write_config,
)
from tests.test_sink_stdout import corpus_bodies

T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 1_000_000_000


def config(url: str = "http://127.0.0.1:3100/loki/api/v1/push", **keys: Any) -> LokiSinkConfig:
    return LokiSinkConfig.model_validate({"url": url, **keys})


def event(name: str, *, rv: str = "1000", reason: str = "BackOff", **fields: Any
          ) -> dict[str, Any]:
    ev = k8s_event(name, uid=f"uid-{name}", reason=reason)
    ev["metadata"]["resourceVersion"] = rv
    ev.update(fields)
    return ev


def stored_rows(events: list[dict[str, Any]]) -> list[StoredRow]:
    now = time.time()
    return [StoredRow(i + 1, e["metadata"]["uid"], e["metadata"]["resourceVersion"], now, None,
                      "", "", "", "", "", 1, 1, orjson.dumps(e)) for i, e in enumerate(events)]


@pytest.fixture
async def loki() -> AsyncIterator[FakeLoki]:
    async with FakeLoki() as fake:
        yield fake


def delivery(sink: LokiSink) -> Delivery[Any]:
    return Delivery(sink, router=None, metrics=Metrics(),
                    settings=DeliverySettings(initial_backoff=0.01, max_backoff=0.05))


async def deliver(sink: LokiSink, events: list[dict[str, Any]]
                  ) -> tuple[list[tuple[int, str]], list[StoredRow]]:
    rows = stored_rows(events)
    d = delivery(sink)
    await sink.start()
    try:
        payloads, kept, dead = d.encode(rows)
        more, completed = await d.send(payloads, kept)
    finally:
        await sink.close()
    assert completed
    return dead + more, rows


# --- config ----------------------------------------------------------------------------------

def test_label_names_are_sanitised_to_lokis_rules() -> None:
    assert sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name"
    assert sanitize_label_name("1st") == "_1st"
    assert sanitize_label_name("ok_Name9") == "ok_Name9"
    cfg = config(streamLabels={"team.name": "a"}, labels={"k-ind": "{{ .Reason }}"})
    assert cfg.label_names(cluster=True) == ["team_name", "k_ind"]


@pytest.mark.parametrize(("keys", "message"), [
    ({"streamLabels": {f"l{i}": "v" for i in range(12)}}, "16 stream labels"),
    ({"streamLabels": {"a.b": "1", "a_b": "2"}}, "label 'a_b' is also set by"),
    ({"labels": {"__name__": "{{ .Reason }}"}}, "reserved"),
    ({"labels": {"r": "{{ .Reason "}}, "labels.r"),
    ({"headers": {"X-Who": "{{ .Reason }}"}}, "templated headers are not supported"),
    ({"tenantID": "t", "headers": {"X-Scope-OrgID": "u"}}, "tenant given twice"),
    ({"username": "u", "password": "p", "bearerToken": "t"}, "authorization given twice"),
    ({"url": "ftp://loki/push"}, "http:// or https://"),
    ({"maxRequestBytes": "1Ki"}, "greater than or equal"),
])
def test_config_mistakes_are_startup_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**keys)


def test_cluster_label_counts_towards_the_limit() -> None:
    cfg = config(streamLabels={f"l{i}": "v" for i in range(11)})  # + 4 default labels = 15
    LokiSink(name="loki", config=cfg)
    with pytest.raises(ValueError, match="16 stream labels"):
        LokiSink(name="loki", config=cfg, cluster_name="prod")


def test_push_url_accepts_full_url_or_base() -> None:
    assert push_url("http://loki:3100") == "http://loki:3100/loki/api/v1/push"
    assert push_url("http://loki:3100/") == "http://loki:3100/loki/api/v1/push"
    full = "https://gw.example/tenant/loki/api/v1/push"
    assert push_url(full) == full


# --- timestamps and encoding -------------------------------------------------------------------

def test_timestamp_is_last_seen_plus_version_and_never_now() -> None:
    ev = event("a", rv="123456789", lastTimestamp="2026-11-23T10:00:00Z")
    assert entry_timestamp(ev) == T0_NS + 456_789
    assert entry_timestamp(ev) == entry_timestamp(orjson.loads(orjson.dumps(ev)))
    assert entry_timestamp({**ev, "metadata": {"resourceVersion": "123456790"}}) \
        == T0_NS + 456_790
    micro = event("b", rv="7", lastTimestamp=None, eventTime="2026-11-23T10:00:00.123456Z")
    assert entry_timestamp(micro) == T0_NS + 123_000_000 + 7
    series = event("c", rv="7", series={"lastObservedTime": "2026-11-23T10:00:05.000000Z"})
    assert entry_timestamp(series) == T0_NS + 5_000_000_000 + 7
    opaque = event("d", rv="not-a-number")
    assert 0 <= entry_timestamp(opaque) - T0_NS < 1_000_000
    bare: dict[str, object] = {"metadata": {"resourceVersion": "1"}}
    with pytest.raises(PermanentSinkError, match="no timestamp"):
        entry_timestamp(bare)


def test_encode_labels_line_and_empty_values() -> None:
    sink = LokiSink(name="loki", cluster_name="c1",
                    config=config(streamLabels={"foo": "bar", "blank": ""}))
    ev = event("web-1", type="")
    labels, ts, line, _ = sink.encode(ev, orjson.dumps(ev))
    assert orjson.loads(labels) == {"cluster": "c1", "foo": "bar", "kind": "Pod",
                                    "namespace": "default", "reason": "BackOff"}
    assert int(ts) == entry_timestamp(ev)
    assert orjson.loads(orjson.loads(line)) == {**ev, "clusterName": "c1"}
    bare = LokiSink(name="loki", config=config(labels={}))
    labels, _, _, _ = bare.encode(ev, orjson.dumps(ev))
    assert orjson.loads(labels) == {"job": "eventpipe"}
    laid = LokiSink(name="loki", config=config(layout={"msg": "{{ .Message }}"},
                                               labels={"obj": "{{ .InvolvedObject.Name }}"}))
    labels, _, line, _ = laid.encode(ev, orjson.dumps(ev))
    assert orjson.loads(labels) == {"obj": "web-1"}
    assert orjson.loads(line) == '{"msg":"BackOff on web-1"}'


def test_chunks_fit_cover_the_batch_and_sort_each_stream() -> None:
    sink = LokiSink(name="loki", config=config())
    bodies = corpus_bodies()[:2000]
    entries = [sink.encode(orjson.loads(b), b) for b in bodies]
    chunks = plan_chunks(entries, 64 * 1024)
    assert len(chunks) > 10
    assert [i for c in chunks for i in c] == list(range(len(entries)))
    for chunk in chunks:
        body = build_body(entries, chunk)
        assert len(body) <= 64 * 1024
        streams = orjson.loads(body)["streams"]
        assert sum(len(s["values"]) for s in streams) == len(chunk)
        assert len({orjson.dumps(s["stream"]) for s in streams}) == len(streams)
        for s in streams:
            stamps = [int(v[0]) for v in s["values"]]
            assert stamps == sorted(stamps)


# --- Loki's answers, through the driver ----------------------------------------------------------

async def test_push_is_gzip_with_tenant_and_auth(loki: FakeLoki) -> None:
    sink = LokiSink(name="loki", config=config(loki.url, tenantID="team-a", username="u",
                                               password="secret"))
    dead, _ = await deliver(sink, [event(f"p-{i}", rv=str(100 + i)) for i in range(20)])
    assert dead == []
    assert loki.stored == 20 and loki.gzipped == 1 and loki.tenants == ["team-a"]
    assert loki.authorizations == ["Basic dTpzZWNyZXQ="]


async def test_bearer_token_file_missing_is_retried_until_it_appears(loki: FakeLoki,
                                                                     tmp_path: Path) -> None:
    token = tmp_path / "token"
    sink = LokiSink(name="loki", config=config(loki.url, bearerTokenFile=str(token)))
    await sink.start()
    try:
        with pytest.raises(RetriableSinkError, match="bearerTokenFile"):
            await sink.send([sink.encode(event("t"), orjson.dumps(event("t")))])
        token.write_text("tok-1\n")
        assert await sink.send([sink.encode(event("t"), orjson.dumps(event("t")))]) == []
    finally:
        await sink.close()
    assert loki.authorizations == ["Bearer tok-1"] and loki.stored == 1


async def test_429_with_retry_after_is_waited_then_delivered(loki: FakeLoki) -> None:
    loki.fail_next(1, 429, retry_after=1)
    sink = LokiSink(name="loki", config=config(loki.url))
    dead, _ = await deliver(sink, [event(f"r-{i}", rv=str(100 + i)) for i in range(10)])
    assert dead == [] and loki.stored == 10
    assert loki.statuses == [429, 204]
    assert loki.push_times[1] - loki.push_times[0] >= 0.95


async def test_retried_push_is_an_exact_duplicate_loki_drops(loki: FakeLoki) -> None:
    loki.fail_next(2, 500, after_store=True)  # Loki stored it, the reply was lost, twice
    sink = LokiSink(name="loki", config=config(loki.url))
    dead, _ = await deliver(sink, [event(f"d-{i}", rv=str(100 + i)) for i in range(30)])
    assert dead == []
    assert loki.statuses == [500, 500, 204]
    assert loki.stored == 30 and loki.duplicates == 60


async def test_one_rejected_entry_is_dead_lettered_the_rest_delivered(loki: FakeLoki) -> None:
    loki.reject_lines(lambda line: "poison-17" in line)
    sink = LokiSink(name="loki", config=config(loki.url, maxRequestBytes=8192))
    events = [event(f"poison-{i}", rv=str(100 + i)) for i in range(40)]
    dead, rows = await deliver(sink, events)
    assert [seq for seq, _ in dead] == [rows[17][0]]
    assert "rejected by the test" in dead[0][1] and "HTTP 400" in dead[0][1]
    assert loki.stored == 39
    assert 4 <= loki.statuses.count(400) <= 12  # found by halving, not one request per event


async def test_second_request_of_a_split_batch_failing_retries_only_its_items(
        loki: FakeLoki) -> None:
    loki.fail_next(1, 503, after=1)
    sink = LokiSink(name="loki", config=config(loki.url, maxRequestBytes=8192))
    events = [event(f"s-{i}", rv=str(100 + i)) for i in range(40)]
    first_chunk = len(plan_chunks([sink.encode(e, orjson.dumps(e))
                                   for e in events], 8192)[0])
    dead, _ = await deliver(sink, events)
    assert dead == [] and loki.stored == 40 and loki.duplicates == 0
    assert loki.statuses[:2] == [204, 503]
    assert sum(loki.body_sizes) > 0 and max(loki.body_sizes) <= 8192
    assert first_chunk < 40


async def test_entry_too_far_behind_is_dead_lettered_with_restamping_off(loki: FakeLoki
                                                                        ) -> None:
    sink = LokiSink(name="loki", config=config(loki.url, restampBehind="0s"))
    new = event("new", rv="200", lastTimestamp="2026-11-23T12:00:00Z")
    old = event("old", rv="100", lastTimestamp="2026-11-23T10:00:00Z")
    dead, rows = await deliver(sink, [new])
    assert dead == []
    ok = event("ok", rv="300", lastTimestamp="2026-11-23T11:30:00Z")
    dead, _ = await deliver(sink, [old, ok])
    assert [seq for seq, _ in dead] == [rows[0][0]]
    assert "entry too far behind" in dead[0][1]
    assert loki.stored == 2


# --- end to end ------------------------------------------------------------------------------

def loki_receiver(url: str, **keys: Any) -> dict[str, Any]:
    return {"name": "loki", "loki": {"url": url, **keys}, "batch": {"maxWait": "100ms"},
            "retry": {"initialBackoff": "50ms", "maxBackoff": "200ms"}}


def both(tmp: Path, url: str, **keys: Any) -> Path:
    return write_config(
        tmp, kubeconfig=tmp / "kubeconfig",
        route={"routes": [{"match": [{"receiver": "dump"}]}, {"match": [{"receiver": "loki"}]}]},
        receivers=[{"name": "dump", "file": {"path": str(tmp / "events.jsonl")}},
                   loki_receiver(url, **keys)])


async def test_corpus_arrives_with_labels_timestamps_and_lines(api: FakeApiServer,
                                                               tmp_path: Path) -> None:
    api.load_corpus(corpus_files())
    latest = {e.uid: e.obj for e in api.store.snapshot(api.resource_version, None)}
    # The corpus comes from many clusters and years: no ordering window would hold it.
    async with FakeLoki(window=10 * 365 * 86400.0) as loki:
        # restampBehind off: every entry must keep the event's own timestamp.
        cfg = both(tmp_path, loki.url, streamLabels={"foo": "bar"}, restampBehind="0s")
        async with running(cfg):
            await loki.wait_for(lambda f: f.stored >= len(latest), within=60,
                                what=f"{len(latest)} entries")
        assert loki.stored == len(latest) and not loki.rejected
        for labels, ts, line in loki.entries():
            obj = orjson.loads(line)
            want = orjson.loads(orjson.dumps(latest[obj["metadata"]["uid"]]))
            assert obj == want
            assert ts == entry_timestamp(want)
            expected = {"foo": "bar", "namespace": want["metadata"].get("namespace", ""),
                        "type": want.get("type") or "", "reason": want.get("reason") or "",
                        "kind": (want.get("involvedObject") or {}).get("kind") or ""}
            assert labels == {k: v for k, v in expected.items() if v}


async def test_rejected_event_goes_to_dead_letters_end_to_end(api: FakeApiServer,
                                                              tmp_path: Path,
                                                              loki: FakeLoki) -> None:
    loki.reject_lines(lambda line: "bad-3" in line)
    cfg = both(tmp_path, loki.url)
    async with running(cfg):
        for i in range(10):
            api.add(k8s_event(f"bad-{i}"))
        await loki.wait_for(lambda f: f.stored == 9, what="9 entries")
        spool = await Spool.open(tmp_path / "spool.db")
        try:
            async def dead_one() -> bool:
                return len(await spool.dead_letters("loki")) == 1
            await wait_until_async(dead_one, within=10, what="one dead letter")
            letters = await spool.dead_letters("loki")
        finally:
            await spool.close()
    assert "rejected by the test" in letters[0][2]
    assert all("bad-3" not in line for line in loki.lines())


async def test_outage_loses_nothing_and_never_slows_the_file_receiver(
        api: FakeApiServer, tmp_path: Path, loki: FakeLoki) -> None:
    cfg = both(tmp_path, loki.url)
    out = tmp_path / "events.jsonl"
    async with running(cfg) as pipeline:
        # The driver sets the gauge after each ack: record every value it takes.
        lag: list[float] = []
        gauge = pipeline.metrics.sink_lag_events.labels("loki")
        real_set = gauge.set

        def record(value: float) -> None:
            lag.append(value)
            real_set(value)

        gauge.set = record  # type: ignore[method-assign]
        for i in range(50):
            api.add(k8s_event(f"before-{i}"))
        await loki.wait_for(lambda f: f.stored == 50, what="first 50")
        await loki.stop()
        started = time.monotonic()
        total = 50
        for round_ in range(4):  # events keep coming while Loki is down
            for i in range(75):
                api.add(k8s_event(f"down-{round_}-{i}"))
            total += 75
            await wait_until(lambda n=total: len(read_lines(out)) == n,  # type: ignore[misc]
                             within=10, what=f"{total} lines in the file")
        assert time.monotonic() - started < 10  # the file receiver never waited for Loki
        assert loki.stored == 50
        await loki.start()
        await loki.wait_for(lambda f: f.stored == 350, within=30, what="all 350 in Loki")
        await wait_until(lambda: gauge._value.get() == 0, what="loki lag back to 0")
    assert len(set(loki.lines())) == 350 and not loki.rejected
    assert max(lag) > 0 and lag[-1] == 0


async def test_resmo_readme_example_loads_and_runs(api: FakeApiServer, tmp_path: Path,
                                                   loki: FakeLoki) -> None:
    # resmo README "Loki" section, with only the URL pointed at the fake.
    text = f"""
kubeconfig: {tmp_path / "kubeconfig"}
spool:
  path: {tmp_path / "spool.db"}
http:
  address: 127.0.0.1
  port: 0
route:
  routes:
    - match:
        - receiver: "loki"
receivers:
  - name: "loki"
    loki:
      headers: # optional
        X-Scope-OrgID: tennantID
      streamLabels:
        foo: bar
      url: {loki.url}
"""
    path = tmp_path / "resmo.yaml"
    path.write_text(text)
    async with running(path):
        api.add(k8s_event("resmo-1"))
        await loki.wait_for(lambda f: f.stored == 1, what="one entry")
    labels, _, line = loki.entries()[0]
    assert labels["foo"] == "bar" and labels["reason"] == "BackOff"
    assert orjson.loads(line)["involvedObject"]["name"] == "resmo-1"
    assert set(loki.tenants) == {"tennantID"}


# --- restampBehind: never rejected for its age -----------------------------------------------

async def test_entry_too_far_behind_is_restamped_with_the_store_time(loki: FakeLoki) -> None:
    """The fake enforces Loki's 1 h window per stream: an event two hours older than the
    stream's newest entry gets the time eventpipe stored it; one half an hour older keeps its
    own; the line is unchanged."""
    metrics = Metrics()
    sink = LokiSink(name="loki", config=config(loki.url, restampBehind="1h"))
    sink.bind_metrics(metrics)
    def ago(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
    new = event("new", rv="200", lastTimestamp=ago(0))
    dead, _ = await deliver(sink, [new])
    old = event("old", rv="100", lastTimestamp=ago(7200))
    ok = event("ok", rv="300", lastTimestamp=ago(1800))
    before = time.time()
    dead, _ = await deliver(sink, [old, ok])
    assert dead == [] and not loki.rejected and loki.stored == 3
    stamps = {orjson.loads(line)["metadata"]["name"]: ts for _, ts, line in loki.entries()}
    assert stamps["ok.17a0"] == entry_timestamp(ok)
    assert stamps["new.17a0"] == entry_timestamp(new)
    assert int(before * 1000) - 5000 <= stamps["old.17a0"] // 1_000_000 <= time.time() * 1000
    assert stamps["old.17a0"] % 1_000_000 == 100  # the resourceVersion offset is kept
    lines = {orjson.loads(line)["metadata"]["name"]: orjson.loads(line) for line in loki.lines()}
    assert lines["old.17a0"]["lastTimestamp"] == old["lastTimestamp"]
    assert sample_values(metric_samples(generate_latest(metrics.registry).decode()),
                         "eventpipe_sink_restamped_total", receiver="loki") == [1.0]


async def test_refused_as_too_far_behind_is_resent_stamped_now(loki: FakeLoki) -> None:
    """A new process knows nothing of what Loki holds: Loki's 400 for the old entry makes the
    sink re-send it stamped now, once; nothing is dead-lettered."""
    first = LokiSink(name="loki", config=config(loki.url, restampBehind="1h"))
    dead, _ = await deliver(first, [event("new", rv="200", lastTimestamp=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()))])
    assert dead == []
    restarted = LokiSink(name="loki", config=config(loki.url, restampBehind="1h"))
    old = event("old", rv="100", lastTimestamp="2026-01-01T00:00:00Z")
    dead, _ = await deliver(restarted, [old])
    assert dead == [] and loki.stored == 2
    assert loki.statuses == [204, 400, 204]
    (ts,) = [ts for _, ts, line in loki.entries() if '"old.17a0"' in line]
    assert abs(ts / 1e9 - time.time()) < 60



async def test_relisted_old_events_reach_loki_restamped_end_to_end(
        api: FakeApiServer, tmp_path: Path, loki: FakeLoki) -> None:
    """Through the running pipeline: events last seen days before the stream's newest entry
    (what a relist after an outage delivers) are stored by Loki, none dead-lettered, and
    /metrics counts them."""
    cfg = both(tmp_path, loki.url, restampBehind="1h")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    async with running(cfg) as pipeline:
        fresh = k8s_event("fresh-0")
        fresh["lastTimestamp"] = now
        api.add(fresh)
        await loki.wait_for(lambda f: f.stored == 1, what="the fresh entry")
        for i in range(5):  # same stream (namespace, type, reason, kind), days older
            api.add(k8s_event(f"old-{i}"))
        await loki.wait_for(lambda f: f.stored == 6, what="6 entries")

        async def counted() -> bool:
            samples = metric_samples((await http_get(pipeline.http.port, "/metrics"))[1])
            return sample_values(samples, "eventpipe_sink_restamped_total",
                                 receiver="loki") == [5.0]
        await wait_until_async(counted, within=10, what="5 re-stamped entries counted")
    assert not loki.rejected
    assert all('"2026-11-23T10:00:00Z"' in line for line in loki.lines() if "old-" in line)
    # Each re-stamped entry carries the event's own time as structured metadata.
    assert len(loki.metadata) == 5
    assert all(m["event_time"].startswith("2026-11-23T10:00:00.000") and
               m["restamp_reason"] == "window" for m in loki.metadata.values())

