"""The `kafka` receiver: one record per event version, produced with aiokafka.

Record: key = the event uid (so every version of an Event lands on one partition, in order),
headers `uid`, `resourceVersion` and `cluster` (when clusterName is set), value = the
`LineEncoder` line (the Event as served, plus clusterName) or the rendered layout. A string
layout's CR/LF are escaped as in the file receiver: one encoder, one rule.

Payload: a `KafkaRecord` (key, resourceVersion, topic, value) made by `encode` from the parsed
event (`needs_event` is always True, so the driver's one orjson parse per event serves key,
headers, a templated topic and a layout alike). The topic is empty for a fixed topic (checked
once at startup; `{{` marks a template).

Ordering and acks. `send` appends the batch's records, in order, to one aiokafka record batch
per partition (`create_batch`/`send_batch`, partitioned by our own murmur2 as aiokafka's
default partitioner would), hands them all over and then awaits them; the batch is reported
delivered only when every record batch was acked with acks=all, and a record batch the broker
refuses as a whole is reported as a group refusal, which the driver splits. aiokafka keeps
one produce request per broker in flight and mutes a partition while its batch is out, so
records of one partition reach the log in the order appended, also through its internal
retries, without idempotence. When a record still fails retriably, every later record of the
same key in the batch is reported failed too (even if it was written), so the driver's retry
re-sends that key's versions in spool order: a duplicate is possible, a version overtaking an
older one is not (the last record of a key is always its newest version).

Errors: permanent (dead letter) only when the record is at fault — larger than maxBatchBytes,
or a rendered topic that is not a legal name / rejected as invalid. Everything else, including
errors aiokafka calls non-retriable but that are about the deployment (authorization, SASL,
unsupported version), is retriable: the events stay in the spool until the cluster is fixed.
A broker that is down at `start()` is not fatal: the producer is started again on each send.
After a retriable record failure the producer is closed and a new one is made on the next send,
so an outage ends with fresh connections and fresh metadata.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from aiokafka.record.default_records import (  # type: ignore[import-untyped]
    DefaultRecordBatchBuilder,
)

from eventpipe.delivery.contract import (
    GroupRejectedError,
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)
from eventpipe.layout import RenderError, Template, compile_template
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.kafka.config import KafkaSinkConfig
from eventpipe.sinks.kafka.options import TOPIC_NAME, check_topic, producer_options

log = logging.getLogger(__name__)

# Errors that are about the record itself: retrying the same bytes cannot succeed.
_RECORD_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError)


class KafkaRecord(NamedTuple):
    """The Kafka sink's payload: one record, ready to produce."""

    key: bytes
    """The event's uid (empty: no key); also the `uid` header."""
    rv: bytes
    """The event's resourceVersion (the `resourceVersion` header)."""
    topic: str
    """The rendered topic; empty for the receiver's fixed topic."""
    value: bytes
    """The record value: the served Event (+ clusterName) or the rendered layout."""


class KafkaSink:
    """Produces each event as one Kafka record (key = uid) with acks=all."""

    def __init__(self, *, name: str, cfg: KafkaSinkConfig, cluster_name: str = "") -> None:
        self.name = name
        where = f"receivers.{name}.kafka"
        self._encoder = LineEncoder(name=name, layout=cfg.layout, de_dot=False,
                                    cluster_name=cluster_name)
        self._options = producer_options(cfg, where=where)
        self._max_request: int = self._options["max_request_size"]
        self._partitioner = self._options["partitioner"]
        self._topic_template: Template | None = None
        self._topic = ""
        if "{{" in cfg.topic:
            self._topic_template = compile_template(cfg.topic, where=f"{where}.topic")
        else:
            self._topic = check_topic(cfg.topic, where=f"{where}.topic")
        self._cluster_header = [("cluster", cluster_name.encode())] if cluster_name else []
        self._producer: Any = None
        self._lock = asyncio.Lock()

    @property
    def needs_event(self) -> bool:
        """Always: uid and resourceVersion (key, headers) come from the parsed event."""
        return True

    def encode(self, event: dict[str, object] | None, body: bytes) -> KafkaRecord:
        """The record for one event (see the module docstring)."""
        assert event is not None, "needs_event: the driver passes the parsed event"
        meta = event.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        uid, rv = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        topic = ""
        if self._topic_template is not None:
            try:
                topic = self._topic_template.render(event)
            except RenderError as exc:
                raise PermanentSinkError(f"receivers.{self.name}.kafka.topic: {exc}") from exc
            if not TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
                raise PermanentSinkError(f"receivers.{self.name}.kafka.topic: rendered "
                                         f"{topic[:300]!r}, not a legal Kafka topic name")
        return KafkaRecord(uid.encode(), rv.encode(), topic, self._encoder.encode(event, body))

    async def start(self) -> None:
        """Start the producer; a broker that cannot be reached now is retried on send."""
        try:
            await self._ensure_producer()
        except RetriableSinkError as exc:
            log.warning("receivers.%s: Kafka not reachable at start, will retry: %s",
                        self.name, exc)

    async def send(self, batch: list[KafkaRecord]) -> Sequence[ItemFailure]:
        """Produce the batch in order and wait for every ack (see the module docstring)."""
        payloads = batch
        if not payloads:
            return []
        producer = await self._ensure_producer()
        failures: dict[int, SinkError] = {}
        try:
            batches = await self._record_batches(producer, payloads, failures)
            futures = [(indices, await producer.send_batch(builder, topic, partition=partition))
                       for (topic, partition), (builder, indices) in batches.items()]
        except Exception as exc:
            # The cluster is not taking records (no metadata, a closed producer): every record
            # of the batch is retried.
            error = self._classify(exc)
            failures.update({i: error for i in range(len(payloads)) if i not in failures})
            futures = []
        if futures:
            await _send_now(producer)
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        for (indices, _), result in zip(futures, results, strict=True):
            if isinstance(result, BaseException):
                error = self._classify(result)
                if len(indices) > 1 and not error.retriable:
                    # The broker refused the record batch as a whole: the driver splits it
                    # until the record at fault stands alone.
                    error = GroupRejectedError(str(error))
                failures.update((i, error) for i in indices)
        if not failures:
            return []
        if any(e.retriable for e in failures.values()):
            # aiokafka already retried for requestTimeoutMs: start over with a new producer on
            # the next send (fresh connections and metadata, e.g. after brokers were replaced).
            await self.close()
        if len(failures) == len(payloads) and all(e.retriable for e in failures.values()):
            raise next(iter(failures.values()))
        return [ItemFailure(i, e) for i, e in sorted(_keep_key_order(payloads, failures).items())]

    async def _record_batches(self, producer: Any, payloads: Sequence[KafkaRecord],
                              failures: dict[int, SinkError]
                              ) -> dict[tuple[str, int], tuple[Any, list[int]]]:
        """The payloads appended to one record batch per (topic, partition), in order, with the
        indices each carries: one future per partition instead of one per record (aiokafka's
        per-record `send()` made a future, a partition lookup and a size check each). A
        partition that outgrows one batch has the full one sent at once (it is closed when
        full) and goes on in a new one. Records larger than a request fail in `failures`."""
        partitions: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        cluster = self._cluster_header
        estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes
        partition_for = self._partitioner
        for index, (uid, rv, topic, value) in enumerate(payloads):
            topic = topic or self._topic
            headers = [("uid", uid), ("resourceVersion", rv), *cluster]
            key = uid or None
            if estimate(key, value, headers) > self._max_request:
                failures[index] = self._classify(MessageSizeTooLargeError(
                    f"the record is larger than maxBatchBytes ({self._max_request})"))
                continue
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(await producer.partitions_for(topic))
            where = (topic, partition_for(key, known, known))
            open_batch = batches.get(where)
            if open_batch is not None and open_batch[0].append(
                    key=key, value=value, timestamp=None, headers=headers) is not None:
                open_batch[1].append(index)
                continue
            if open_batch is not None:  # full: on its way while the next one fills
                await producer.send_batch(open_batch[0], topic, partition=where[1])
            builder = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None, headers=headers)
            batches[where] = (builder, [index])
        return batches

    async def close(self) -> None:
        """Flush and stop the producer; safe to call twice and before start."""
        async with self._lock:
            producer, self._producer = self._producer, None
            if producer is not None:
                try:
                    async with asyncio.timeout(10):
                        await producer.stop()
                except (KafkaError, OSError, TimeoutError) as exc:
                    log.warning("receivers.%s: producer did not stop cleanly: %s",
                                self.name, type(exc).__name__)

    async def _ensure_producer(self) -> Any:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(**self._options)
            try:
                await producer.start()
            except (KafkaError, OSError, TimeoutError) as exc:
                await producer.stop()
                raise RetriableSinkError(
                    f"receivers.{self.name}: cannot connect to Kafka: {type(exc).__name__}: "
                    f"{exc}") from exc
            self._producer = producer
            return producer

    def _classify(self, exc: BaseException) -> SinkError:
        message = f"receivers.{self.name}: {type(exc).__name__}: {exc}"
        if isinstance(exc, _RECORD_ERRORS):
            return PermanentSinkError(message)
        if isinstance(exc, KafkaError | OSError | TimeoutError):
            return RetriableSinkError(message)
        raise exc  # a bug, not a delivery outcome: the driver logs it and retries the batch


async def _send_now(producer: Any) -> None:
    """Close the open record batches so they go out now instead of after lingerMs.

    The driver hands over a whole batch and waits for all of it: lingering after its last
    record only adds latency. aiokafka has no public "send now" outside transactions; its
    accumulator's `flush_for_commit` is that (it also waits for the batches, as we do next).
    Without it (another aiokafka version) the records simply go out after lingerMs; a test
    (test_sink_kafka.py) pins that the private method is there, so an upgrade that removes it
    fails loudly instead of quietly adding lingerMs to every batch.
    """
    flush = getattr(getattr(producer, "_message_accumulator", None), "flush_for_commit", None)
    if flush is not None:
        await flush()


def _keep_key_order(payloads: Sequence[KafkaRecord], failures: dict[int, SinkError]
                    ) -> dict[int, SinkError]:
    """Also fail every later record of a key whose earlier record failed retriably."""
    first_failed: dict[bytes, int] = {}
    for index in sorted(failures):
        if failures[index].retriable:
            first_failed.setdefault(payloads[index].key, index)
    if not first_failed:
        return failures
    out = dict(failures)
    for index in range(min(first_failed.values()) + 1, len(payloads)):
        if index in out:
            continue
        start = first_failed.get(payloads[index].key)
        if start is not None and index > start:
            out[index] = RetriableSinkError(
                "re-sent after an earlier version of the same event failed (keeps key order)")
    return out


def build_sink(config: KafkaSinkConfig, *, name: str, cluster_name: str) -> KafkaSink:
    """The registry's factory: a `KafkaSink` from the `kafka:` model."""
    return KafkaSink(name=name, cfg=config, cluster_name=cluster_name)
