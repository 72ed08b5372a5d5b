"""Config model of the `kafka` receiver: resmo's keys exactly, plus eventpipe's producer knobs.

resmoio/kubernetes-event-exporter (pkg/sinks/kafka.go, sarama) reads `topic`, `brokers`,
`layout`, `clientId`, `compressionCodec`, `version`, `tls`, `sasl` (with `mechanism`), `avro`
and `sentUpdateEvent`. All of them are accepted so its configs load unchanged; the ones that
mean nothing for aiokafka say so in their description (`version`: aiokafka negotiates the
protocol version with the broker; `sentUpdateEvent`: eventpipe sends every version).

eventpipe adds `idempotent`, `acks` (only `all`: an event is spooled durably, and a leader-only
ack could lose it after the cursor moved), `lingerMs`, `maxBatchBytes` and `requestTimeoutMs`,
and lets `topic` be a Go template (`k8s-events-{{ .Namespace }}`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from eventpipe.config.sinks import SinkConfig
from eventpipe.config.tls import TlsConfig
from eventpipe.core.model import Model

_LAYOUT_DOC = (
    "Message value template: a Go-template string, or a map/list whose string leaves are Go "
    "templates, rendered per event (a map is sent as JSON). Omitted: the whole event as JSON "
    "(plus `clusterName` when set)."
)


class KafkaSaslConfig(Model):
    """SASL authentication (resmo's `sasl:`)."""

    enable: bool = Field(default=False, description="Authenticate with SASL.")
    username: str = Field(default="", description="SASL user name.")
    password: str = Field(default="", description="SASL password (use `${ENV}`; never logged).")
    mechanism: Literal["", "plain", "sha256", "sha512"] = Field(
        default="plain",
        description="`plain` (SASL/PLAIN), `sha256` (SCRAM-SHA-256) or `sha512` "
        "(SCRAM-SHA-512); empty means plain, as in resmo.")

    @model_validator(mode="after")
    def _needs_user(self) -> KafkaSaslConfig:
        if self.enable and not self.username:
            raise ValueError("sasl.username is required when sasl.enable is true")
        return self


class KafkaAvroConfig(Model):
    """resmo's Avro encoding (`avro:`): accepted so the key is known, refused when used."""

    schema_id: str = Field(default="", alias="schemaID",
                           description="Schema registry id of the Avro schema (not supported).")
    schema_text: str = Field(default="", alias="schema",
                             description="Avro schema JSON (not supported).")


class KafkaSinkConfig(SinkConfig):
    """Produce one Kafka record per event version (key = event uid) with aiokafka."""

    topic: str = Field(
        min_length=1,
        description="Topic to produce to. A Go template (`k8s-events-{{ .Namespace }}`) picks "
        "the topic per event; an event whose rendered topic is not a legal Kafka topic name is "
        "dead-lettered.")
    brokers: list[str] = Field(
        min_length=1, description="Bootstrap brokers as `host:port`.")
    layout: Any = Field(default=None, description=_LAYOUT_DOC)
    client_id: str = Field(
        default="", alias="clientId",
        description="Client id sent to the brokers (empty: `eventpipe`).")
    compression_codec: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="none", alias="compressionCodec",
        description="Compression of record batches: none, gzip, snappy, lz4 or zstd "
        "(snappy/lz4/zstd use the `cramjam` package, installed with eventpipe).")
    version: str = Field(
        default="", description="Accepted for resmo compatibility and ignored: sarama needs "
        "the broker version, aiokafka asks the broker which protocol versions it speaks.")
    tls: TlsConfig | None = Field(
        default=None, description="TLS to the brokers; used when `tls.enable` is true.")
    sasl: KafkaSaslConfig | None = Field(default=None, description="SASL authentication.")
    avro: KafkaAvroConfig | None = Field(
        default=None, description="resmo's Avro encoding. Not supported: a non-empty "
        "`schemaID` is a startup error (sending JSON to Avro consumers would be worse).")
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent",
        description="Accepted for resmo compatibility and ignored: eventpipe delivers every "
        "version of an Event; routing decides which ones a receiver takes.")
    idempotent: bool = Field(
        default=True,
        description="eventpipe: idempotent producer (no broker-side duplicates from "
        "producer retries). Turn off for brokers that refuse it.")
    acks: Literal["all"] = Field(
        default="all", description="eventpipe: always `all` (every in-sync replica): the "
        "spool cursor moves only after the record is durable on the cluster.")
    linger_ms: int = Field(
        default=5, ge=0, alias="lingerMs",
        description="eventpipe: how long the producer waits to fill a record batch.")
    max_batch_bytes: int = Field(
        default=1 << 20, ge=1024, alias="maxBatchBytes",
        description="eventpipe: largest record batch per partition in bytes; also the largest "
        "request (a bigger single record is dead-lettered as too large).")
    request_timeout_ms: int = Field(
        default=30_000, ge=1000, alias="requestTimeoutMs",
        description="eventpipe: how long a produce waits for the broker before the batch is "
        "retried by eventpipe with backoff.")

    @model_validator(mode="after")
    def _check(self) -> KafkaSinkConfig:
        if self.avro is not None and self.avro.schema_id:
            raise ValueError("avro encoding is not supported by eventpipe; remove `avro` "
                             "(events are sent as JSON or with `layout`)")
        if any(not b.strip() for b in self.brokers):
            raise ValueError("brokers must not contain empty entries")
        return self
