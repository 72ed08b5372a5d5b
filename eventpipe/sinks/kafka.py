"""The `kafka` receiver: one record per event version, produced with aiokafka.

Record: key = the event uid (so every version of an Event lands on one partition, in order),
headers `uid`, `resourceVersion` and `cluster` (when clusterName is set), value = the
`LineEncoder` line (the Event as served, plus clusterName) or the rendered layout. A string
layout's CR/LF are escaped as in the file receiver: one encoder, one rule.

encode() → send() hand-off. The driver passes `send` only the bytes `encode` returned, but a
record needs uid and resourceVersion besides its value. `encode` packs them into a small frame,
``uid \\0 resourceVersion \\0 topic \\0 value`` (uid, rv and topic never hold NUL; the value is
last, so `split(b"\\0", 3)` is exact whatever it holds). uid/rv come from the parsed event:
`needs_event` is always True, so the driver's one orjson parse per event serves key, headers,
a templated topic and a layout alike; nothing is parsed twice. The topic slot is empty for a
fixed topic (checked once at startup; `{{` marks a template).

Ordering and acks. `send` appends every record of the batch to the producer (`send()` futures,
so records are batched per partition and pipelined), then awaits them all; the batch is
reported delivered only when every record was acked with acks=all. aiokafka keeps one produce
request per broker in flight and mutes a partition while its batch is out, so records of one
partition reach the log in the order appended, also through its internal retries, without
idempotence. When a record still fails retriably, every later record of the same key in the
batch is reported failed too (even if it was written), so the driver's retry re-sends that key's
versions in spool order: a duplicate is possible, a version overtaking an older one is not
(the last record of a key is always its newest version).

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
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from eventpipe.config.sink_kafka import KafkaSinkConfig
from eventpipe.layout import RenderError, Template, compile_template
from eventpipe.sinks.base import ItemFailure, PermanentSinkError, RetriableSinkError, SinkError
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.kafka_options import TOPIC_NAME, check_topic, producer_options

log = logging.getLogger(__name__)

_SEP = b"\0"
# Errors that are about the record itself: retrying the same bytes cannot succeed.
_RECORD_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError)


class KafkaSink:
    """Produces each event as one Kafka record (key = uid) with acks=all."""

    def __init__(self, *, name: str, cfg: KafkaSinkConfig, cluster_name: str = "") -> None:
        self.name = name
        where = f"receivers.{name}.kafka"
        self._encoder = LineEncoder(name=name, layout=cfg.layout, de_dot=False,
                                    cluster_name=cluster_name)
        self._options = producer_options(cfg, where=where)
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

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """The frame ``uid\\0rv\\0topic\\0value`` for one event (see the module docstring)."""
        if event is None:  # the driver parses when needs_event; stay correct if it did not
            import orjson

            event = orjson.loads(body)
            if not isinstance(event, dict):
                raise PermanentSinkError(f"receivers.{self.name}: event body is not an object")
        meta = event.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        uid, rv = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        if "\0" in uid or "\0" in rv:
            raise PermanentSinkError(f"receivers.{self.name}: uid/resourceVersion hold NUL")
        topic = ""
        if self._topic_template is not None:
            try:
                topic = self._topic_template.render(event)
            except RenderError as exc:
                raise PermanentSinkError(f"receivers.{self.name}.kafka.topic: {exc}") from exc
            if not TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
                raise PermanentSinkError(f"receivers.{self.name}.kafka.topic: rendered "
                                         f"{topic[:300]!r}, not a legal Kafka topic name")
        value = self._encoder.encode(event, body)
        return b"".join((uid.encode(), _SEP, rv.encode(), _SEP, topic.encode(), _SEP, value))

    async def start(self) -> None:
        """Start the producer; a broker that cannot be reached now is retried on send."""
        try:
            await self._ensure_producer()
        except RetriableSinkError as exc:
            log.warning("receivers.%s: Kafka not reachable at start, will retry: %s",
                        self.name, exc)

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """Produce the batch in order and wait for every ack (see the module docstring)."""
        if not payloads:
            return []
        producer = await self._ensure_producer()
        failures: dict[int, SinkError] = {}
        futures: list[tuple[int, bytes, asyncio.Future[Any]]] = []
        for index, frame in enumerate(payloads):
            uid, rv, topic, value = frame.split(_SEP, 3)
            key = uid or None
            headers = [("uid", uid), ("resourceVersion", rv), *self._cluster_header]
            try:
                future = await producer.send(topic.decode() or self._topic, value, key=key,
                                             headers=headers)
            except Exception as exc:
                error = self._classify(exc)
                failures[index] = error
                if error.retriable:
                    # The cluster is not taking records (no metadata, full buffer timing out):
                    # the rest would wait request_timeout each; keep them for the retry.
                    failures.update({i: error for i in range(index + 1, len(payloads))})
                    break
                continue
            futures.append((index, uid, future))
        if futures:
            await _send_now(producer)
        results = await asyncio.gather(*(f for _, _, f in futures), return_exceptions=True)
        for (index, _, _), result in zip(futures, results, strict=True):
            if isinstance(result, BaseException):
                failures[index] = self._classify(result)
        if not failures:
            return []
        if any(e.retriable for e in failures.values()):
            # aiokafka already retried for requestTimeoutMs: start over with a new producer on
            # the next send (fresh connections and metadata, e.g. after brokers were replaced).
            await self.close()
        if len(failures) == len(payloads) and all(e.retriable for e in failures.values()):
            raise next(iter(failures.values()))
        return [ItemFailure(i, e) for i, e in sorted(_keep_key_order(payloads, failures).items())]

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
    Without it (another aiokafka version) the records simply go out after lingerMs.
    """
    flush = getattr(getattr(producer, "_message_accumulator", None), "flush_for_commit", None)
    if flush is not None:
        await flush()


def _keep_key_order(payloads: Sequence[bytes], failures: dict[int, SinkError]
                    ) -> dict[int, SinkError]:
    """Also fail every later record of a key whose earlier record failed retriably."""
    first_failed: dict[bytes, int] = {}
    for index in sorted(failures):
        if failures[index].retriable:
            first_failed.setdefault(payloads[index].split(_SEP, 1)[0], index)
    if not first_failed:
        return failures
    out = dict(failures)
    for index in range(min(first_failed.values()) + 1, len(payloads)):
        if index in out:
            continue
        uid = payloads[index].split(_SEP, 1)[0]
        start = first_failed.get(uid)
        if start is not None and index > start:
            out[index] = RetriableSinkError(
                "re-sent after an earlier version of the same event failed (keeps key order)")
    return out
