"""The `kafka` receiver: config, framing, and delivery to a real Kafka-protocol broker (tansu),
directly and through eventpipe run in-process against the fake API server."""

from __future__ import annotations

import inspect
import random
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

from eventpipe.app import Pipeline
from eventpipe.delivery.contract import (
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)
from eventpipe.delivery.driver import SinkWorker
from eventpipe.sinks.kafka.config import KafkaSinkConfig
from eventpipe.sinks.kafka.options import producer_options
from eventpipe.sinks.kafka.partition import KeyPartitioner
from eventpipe.sinks.kafka.partition import murmur2 as fast_murmur2
from eventpipe.sinks.kafka.sink import KafkaRecord, KafkaSink, _keep_key_order
from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.kafka_broker import TansuBroker, consume, free_port, kafka_broker
from tests.pipeline_harness import (
    burst_events,
    k8s_event,
    read_lines,
    running,
    wait_until,
    write_config,
)
from tests.test_pipeline_e2e import served_versions

__all__ = ["kafka_broker"]  # the fixture, imported so pytest finds it here

RESMO_EXAMPLE = """
receivers:
  - name: "kafka"
    kafka:
      clientId: "kubernetes"
      topic: "kube-event"
      brokers:
        - "localhost:9092"
      compressionCodec: "snappy"
      tls:
        enable: true
        certFile: "kafka-client.crt"
        keyFile: "kafka-client.key"
        caFile: "kafka-ca.crt"
      sasl:
        enable: true
        username: "kube-event-producer"
        password: "kube-event-producer-password"
        mechanism: "sha512"
      layout: #optional
        kind: "{{ .InvolvedObject.Kind }}"
        namespace: "{{ .InvolvedObject.Namespace }}"
        name: "{{ .InvolvedObject.Name }}"
        reason: "{{ .Reason }}"
        message: "{{ .Message }}"
        type: "{{ .Type }}"
        createdAt: "{{ .GetTimestampISO8601 }}"
"""


def config(brokers: list[str], **extra: Any) -> KafkaSinkConfig:
    return KafkaSinkConfig.model_validate(
        {"topic": "events", "brokers": brokers, "idempotent": False, **extra})


def event(uid: str, rv: int, *, namespace: str = "default", message: str = "m") -> dict[str, Any]:
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": f"{uid}.1", "namespace": namespace, "uid": uid,
                         "resourceVersion": str(rv)},
            "involvedObject": {"kind": "Pod", "name": uid, "namespace": namespace},
            "reason": "BackOff", "message": message, "type": "Warning", "count": rv}


def frames(sink: KafkaSink, events: list[dict[str, Any]]) -> list[KafkaRecord]:
    return [sink.encode(e, orjson.dumps(e)) for e in events]


def make_certs(folder: Path) -> None:
    """A CA and a client certificate with the file names of resmo's README example."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
        "kafka-ca.crt", "-days", "1", "-subj", "/CN=test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "kafka-client.key", "-out",
        "client.csr", "-subj", "/CN=client")
    run("x509", "-req", "-in", "client.csr", "-CA", "kafka-ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "kafka-client.crt", "-days", "1")


# ---- config ----------------------------------------------------------------------------------

def test_resmo_example_loads_unchanged_with_every_key(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make_certs(tmp_path)
    monkeypatch.chdir(tmp_path)  # the example's certificate paths are relative
    raw = yaml.safe_load(RESMO_EXAMPLE)["receivers"][0]["kafka"]
    cfg = KafkaSinkConfig.model_validate(raw)
    assert cfg.acks == "all" and cfg.idempotent
    options = producer_options(cfg, where="receivers.kafka.kafka")
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["compression_type"] == "snappy"
    assert options["client_id"] == "kubernetes"
    assert options["ssl_context"] is not None
    sink = KafkaSink(name="kafka", cfg=cfg)
    assert sink.needs_event
    # resmo's other keys are accepted too (version, sentUpdateEvent, an empty avro block).
    KafkaSinkConfig.model_validate({**raw, "version": "2.8.0", "sentUpdateEvent": True,
                                    "avro": {"schemaID": "", "schema": ""}})


@pytest.mark.parametrize(("extra", "needle"), [
    ({"compressionCodec": "brotli"}, "compressionCodec"),
    ({"avro": {"schemaID": "7", "schema": "{}"}}, "avro"),
    ({"sasl": {"enable": True}}, "username"),
    ({"sasl": {"enable": True, "username": "u", "mechanism": "md5"}}, "mechanism"),
    ({"acks": "1"}, "acks"),
    ({"partitions": 3}, "partitions"),
])
def test_bad_config_is_refused_naming_the_key(extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        config(["127.0.0.1:9092"], **extra)


def test_missing_codec_library_and_illegal_topic_are_startup_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from eventpipe.sinks.kafka import options as kafka_options

    monkeypatch.setitem(kafka_options._CODEC_AVAILABLE, "zstd", lambda: False)
    with pytest.raises(ValueError, match=r"compressionCodec: zstd needs .*cramjam"):
        KafkaSink(name="k", cfg=config(["b:1"], compressionCodec="zstd"))
    with pytest.raises(ValueError, match="not a legal Kafka topic"):
        KafkaSink(name="k", cfg=config(["b:1"], topic="kube events"))


async def test_secrets_stay_out_of_errors() -> None:
    cfg = config([f"127.0.0.1:{free_port()}"],
                 sasl={"enable": True, "username": "u", "password": "hunter2"})
    sink = KafkaSink(name="k", cfg=cfg)
    with pytest.raises(RetriableSinkError) as caught:
        await sink.send(frames(sink, [event("a", 1)]))
    assert "hunter2" not in str(caught.value) and "cannot connect" in str(caught.value)


def test_fast_murmur2_matches_aiokafka_partitioning() -> None:
    from aiokafka.partitioner import DefaultPartitioner, murmur2  # type: ignore[import-untyped]

    rng = random.Random(5)
    partitioner = KeyPartitioner()
    for size in range(70):
        for _ in range(20):
            key = rng.randbytes(size)
            assert fast_murmur2(key) == murmur2(key)
            assert partitioner(key, [0, 1, 2, 3, 4], []) == DefaultPartitioner()(
                key, [0, 1, 2, 3, 4], [])


# ---- encode ----------------------------------------------------------------------------------

def test_frame_carries_uid_rv_and_the_served_bytes() -> None:
    sink = KafkaSink(name="k", cfg=config(["b:1"]), cluster_name="prod")
    ev = event("u-1", 42)
    body = orjson.dumps(ev)
    uid, rv, topic, value = sink.encode(ev, body)
    assert (uid, rv, topic) == (b"u-1", b"42", "")
    assert value == body[:-1] + b',"clusterName":"prod"}'
    # A NUL in the value is just a byte of the value.
    ev2 = event("u-2", 7, message="a\0b")
    assert sink.encode(ev2, orjson.dumps(ev2)).value == orjson.dumps(ev2)[:-1] + (
        b',"clusterName":"prod"}')


def test_templated_topic_renders_per_event_and_bad_names_are_dead_lettered() -> None:
    sink = KafkaSink(name="k", cfg=config(["b:1"], topic="k8s-events-{{ .Namespace }}"))
    ev = event("u", 1, namespace="kube-system")
    assert sink.encode(ev, orjson.dumps(ev)).topic == "k8s-events-kube-system"
    bad = event("u", 1, namespace="no spaces/allowed")
    with pytest.raises(PermanentSinkError, match="not a legal Kafka topic"):
        sink.encode(bad, orjson.dumps(bad))


def test_layout_is_the_value() -> None:
    sink = KafkaSink(name="k", cfg=config(["b:1"], layout={"r": "{{ .Reason }}",
                                                          "c": "{{ .ClusterName }}"}),
                     cluster_name="c1")
    ev = event("u", 1)
    assert orjson.loads(sink.encode(ev, orjson.dumps(ev)).value) == {
        "r": "BackOff", "c": "c1"}


def test_a_failed_version_fails_the_later_versions_of_its_key() -> None:
    payloads = [KafkaRecord(key, rv, "", b"v") for key, rv in (
        (b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"a", b"3"))]
    out = _keep_key_order(payloads, {0: RetriableSinkError("t"), 3: PermanentSinkError("p")})
    assert sorted(out) == [0, 2, 3, 4]
    assert out[2].retriable and out[4].retriable and not out[3].retriable
    only_permanent: dict[int, SinkError] = {1: PermanentSinkError("p")}
    assert _keep_key_order(payloads, only_permanent) == only_permanent


async def test_send_now_private_accumulator_is_still_there() -> None:
    # `_send_now` closes lingering batches through aiokafka's private accumulator; if an
    # upgrade renames it, every batch would quietly wait lingerMs more. Fail here instead.
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    try:
        flush = producer._message_accumulator.flush_for_commit
        assert inspect.iscoroutinefunction(flush)
    finally:
        await producer.stop()


# ---- against the real broker -----------------------------------------------------------------

async def test_batch_is_produced_keyed_with_headers_in_order(kafka_broker: TansuBroker) -> None:
    sink = KafkaSink(name="k", cfg=config([kafka_broker.bootstrap], compressionCodec="lz4"),
                     cluster_name="prod")
    await sink.start()
    events = [event(f"uid-{i % 37}", i + 1) for i in range(600)]
    try:
        assert await sink.send(frames(sink, events)) == []
    finally:
        await sink.close()
    records = await consume(kafka_broker.bootstrap, ["events"], count=600)
    assert len(records) == 600
    by_key: dict[bytes, list[int]] = {}
    for rec in records:
        headers = dict(rec.headers)
        value = orjson.loads(rec.value)
        assert rec.key == headers["uid"] == value["metadata"]["uid"].encode()
        assert headers["resourceVersion"] == value["metadata"]["resourceVersion"].encode()
        assert headers["cluster"] == b"prod" and value["clusterName"] == "prod"
        by_key.setdefault(rec.key, []).append(int(headers["resourceVersion"]))
    assert all(rvs == sorted(rvs) for rvs in by_key.values()), "a key's versions reordered"
    assert sorted(rv for rvs in by_key.values() for rv in rvs) == list(range(1, 601))


async def test_oversized_record_is_a_permanent_item_failure(kafka_broker: TansuBroker) -> None:
    sink = KafkaSink(name="k", cfg=config([kafka_broker.bootstrap], maxBatchBytes=4096))
    await sink.start()
    events = [event("a", 1), event("b", 2, message="x" * 10_000), event("c", 3)]
    try:
        failures = await sink.send(frames(sink, events))
    finally:
        await sink.close()
    assert [(f.index, f.error.retriable) for f in failures] == [(1, False)]
    assert "MessageSizeTooLarge" in str(failures[0].error)
    records = await consume(kafka_broker.bootstrap, ["events"], count=2, within=10)
    assert sorted(r.key for r in records) == [b"a", b"c"]


async def test_broker_down_at_start_is_retried_on_send(tmp_path: Path) -> None:
    broker = TansuBroker(port=free_port(), log=tmp_path / "tansu.log")
    sink = KafkaSink(name="k", cfg=config([broker.bootstrap], requestTimeoutMs=2000))
    await sink.start()  # must not raise
    try:
        with pytest.raises(RetriableSinkError, match="cannot connect"):
            await sink.send(frames(sink, [event("a", 1)]))
        await broker.start()
        assert await sink.send(frames(sink, [event("a", 1), event("a", 2)])) == []
        records = await consume(broker.bootstrap, ["events"], count=2, within=10)
        assert [dict(r.headers)["resourceVersion"] for r in records] == [b"1", b"2"]
    finally:
        await sink.close()
        broker.stop()


async def test_broker_killed_mid_stream_raises_retriable_then_recovers(
        kafka_broker: TansuBroker) -> None:
    sink = KafkaSink(name="k", cfg=config([kafka_broker.bootstrap], requestTimeoutMs=1500))
    await sink.start()
    try:
        assert await sink.send(frames(sink, [event("a", 1)])) == []
        kafka_broker.stop()
        with pytest.raises(RetriableSinkError):
            await sink.send(frames(sink, [event("a", 2), event("b", 3)]))
        await kafka_broker.start()  # a fresh, empty broker on the same port
        assert await sink.send(frames(sink, [event("a", 2), event("b", 3)])) == []
    finally:
        await sink.close()
    records = await consume(kafka_broker.bootstrap, ["events"], count=2, within=10)
    assert sorted(dict(r.headers)["resourceVersion"] for r in records) == [b"2", b"3"]


# ---- end to end: fake API server -> eventpipe (in-process) -> tansu -------------------------

def kafka_receiver(broker: TansuBroker, **extra: Any) -> dict[str, Any]:
    return {"name": "kafka",
            "kafka": {"topic": "k8s-events", "brokers": [broker.bootstrap], "idempotent": False,
                      "requestTimeoutMs": 1500, **extra},
            "retry": {"initialBackoff": "0.05s", "maxBackoff": "0.5s"},
            "batch": {"maxEvents": 250, "maxWait": "20ms"}}


def two_receivers(tmp_path: Path, broker: TansuBroker) -> Path:
    return write_config(
        tmp_path, kubeconfig=tmp_path / "kubeconfig",
        route={"routes": [{"match": [{"receiver": "dump"}]},
                          {"match": [{"receiver": "kafka"}]}]},
        receivers=[{"name": "dump", "file": {"path": str(tmp_path / "events.jsonl")}},
                   kafka_receiver(broker)])


def worker(pipeline: Pipeline, name: str) -> SinkWorker:
    return next(w for w in pipeline.workers if w.name == name)


async def spool_seqs(path: Path) -> dict[tuple[str, str], int]:
    """(uid, resourceVersion) -> spool seq of every stored version."""
    spool = await Spool.open(path)
    try:
        rows = await spool.read_after(0, 10**7)
    finally:
        await spool.close()
    return {(r.uid, r.resource_version): r.seq for r in rows}


def check_records(records: list[Any], served: dict[tuple[str, str], Any]) -> set[tuple[str, str]]:
    """Every record is a served version, keyed by uid, headers right, each key's versions in
    order of first arrival; returns the (uid, rv) set."""
    seen: set[tuple[str, str]] = set()
    first_order: dict[str, list[int]] = {}
    for rec in records:
        headers = dict(rec.headers)
        uid, rv = rec.key.decode(), headers["resourceVersion"].decode()
        assert headers["uid"] == rec.key
        assert orjson.loads(rec.value) == served[(uid, rv)], f"{uid}/{rv} changed on its way"
        if (uid, rv) not in seen:
            first_order.setdefault(uid, []).append(int(rv))
        seen.add((uid, rv))
    for uid, rvs in first_order.items():
        assert rvs == sorted(rvs), f"versions of {uid} arrived out of order: {rvs}"
    return seen


async def test_burst_through_eventpipe_arrives_complete(api: FakeApiServer, tmp_path: Path,
                                                        kafka_broker: TansuBroker) -> None:
    async with running(two_receivers(tmp_path, kafka_broker)) as pipeline:
        total = api.add_many(burst_events(2000, 1000, prefix="kb"))
        kafka = worker(pipeline, "kafka")
        await wait_until(lambda: kafka.acked_seq >= total, within=40, what="kafka acked all")
    served = served_versions(api)
    assert len(served) == total == 3000
    records = await consume(kafka_broker.bootstrap, ["k8s-events"], count=total)
    assert len(records) == total  # a clean run sends each version once
    assert check_records(records, served) == set(served)


async def test_broker_outage_backlog_arrives_and_file_is_not_slowed(
        api: FakeApiServer, tmp_path: Path, kafka_broker: TansuBroker) -> None:
    async with running(two_receivers(tmp_path, kafka_broker)) as pipeline:
        kafka, dump = worker(pipeline, "kafka"), worker(pipeline, "dump")
        lag = pipeline.metrics.sink_lag_events.labels("kafka")
        sink = kafka.delivery.sink
        original_send = sink.send
        kill_at = [float("inf")]
        delivered_before_kill: set[tuple[str, str]] = set()
        lag_seen: list[float] = []

        async def spy(payloads: list[KafkaRecord]) -> Sequence[ItemFailure]:
            started = time.monotonic()
            failed: set[int] = set(range(len(payloads)))
            try:
                failures = await original_send(payloads)
                failed = {f.index for f in failures}
                return failures
            finally:
                if started < kill_at[0]:
                    for i, record in enumerate(payloads):
                        if i not in failed:
                            delivered_before_kill.add((record.key.decode(), record.rv.decode()))

        sink.send = spy  # type: ignore[method-assign, assignment]

        def watch_lag() -> bool:
            lag_seen.append(lag._value.get())
            return False

        first = api.add_many(burst_events(3000, 1000, prefix="ob"))
        await wait_until(lambda: watch_lag() or kafka.acked_seq >= 400, within=20,
                         what="kafka under way")
        kafka_broker.stop()
        kill_at[0] = time.monotonic()
        cursor_at_kill = kafka.acked_seq
        assert cursor_at_kill < first, "the broker should go down mid-burst"
        second = api.add_many(burst_events(1500, 500, prefix="ow"))
        total = first + second
        # The file receiver gets everything while Kafka is down.
        await wait_until(lambda: watch_lag() or dump.acked_seq >= total, within=30,
                         what="file receiver complete")
        assert not kafka_broker.running
        await wait_until(lambda: watch_lag() or failures_of(pipeline, "kafka") > 0,
                         within=20, what="kafka send failures")
        assert kafka.acked_seq < total
        await kafka_broker.start()  # a fresh, empty broker on the same port
        await wait_until(lambda: watch_lag() or (kafka.acked_seq >= total
                                                 and lag._value.get() == 0),
                         within=60, what="kafka caught up, lag back to 0")
    assert max(lag_seen) > 0 and lag_seen[-1] == 0
    assert len(read_lines(tmp_path / "events.jsonl")) == total
    served = served_versions(api)
    seqs = await spool_seqs(tmp_path / "spool.db")
    assert set(seqs) == set(served) and len(served) == total
    after_cursor = {v for v, seq in seqs.items() if seq > cursor_at_kill}
    records = await consume(kafka_broker.bootstrap, ["k8s-events"],
                            count=len(after_cursor - delivered_before_kill), within=30)
    on_new = check_records(records, served)
    # What the old broker acked is gone with it; everything else is on the new broker.
    assert after_cursor - delivered_before_kill <= on_new
    assert set(served) <= on_new | delivered_before_kill
    assert {v for v in served if v[0].startswith("ow-")} <= on_new  # the outage's events


def failures_of(pipeline: Pipeline, receiver: str) -> float:
    metric = pipeline.metrics.sink_failures
    return float(sum(metric.labels(receiver, reason)._value.get()
                     for reason in ("retriable", "partial")))


async def test_resmo_readme_example_runs(api: FakeApiServer, tmp_path: Path,
                                         kafka_broker: TansuBroker) -> None:
    example = yaml.safe_load(RESMO_EXAMPLE)["receivers"][0]
    kafka = example["kafka"]
    kafka["brokers"] = [kafka_broker.bootstrap]
    # The in-memory test broker speaks neither TLS nor SCRAM (no users without a shared store)
    # and refuses idempotent producers; those three are switched off, the rest is as printed.
    kafka["tls"]["enable"] = kafka["sasl"]["enable"] = False
    kafka["idempotent"] = False
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          route={"routes": [{"match": [{"receiver": "kafka"}]}]},
                          receivers=[example])
    async with running(config) as pipeline:
        uids = [api.add(k8s_event(f"web-{i}"))["metadata"]["uid"] for i in range(20)]
        await wait_until(lambda: worker(pipeline, "kafka").acked_seq >= 20, within=30,
                         what="20 events acked")
    records = await consume(kafka_broker.bootstrap, ["kube-event"], count=20)
    assert sorted(r.key.decode() for r in records) == sorted(uids)
    values = [orjson.loads(r.value) for r in records]
    assert {v["name"] for v in values} == {f"web-{i}" for i in range(20)}
    assert all(v["kind"] == "Pod" and v["reason"] == "BackOff" and v["createdAt"]
               == "2026-11-23T10:00:00.000Z" for v in values)
