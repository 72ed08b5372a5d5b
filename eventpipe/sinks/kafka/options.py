"""aiokafka producer options from the `kafka:` config, checked at startup.

Kept apart from the sink so everything that can be wrong in a config (a codec whose library is
missing, unreadable TLS files, an illegal fixed topic) is found when the receiver is built, with
a message naming the key, and never as a stream of send failures.
"""

from __future__ import annotations

import re
import ssl
from typing import Any

from aiokafka import codec  # type: ignore[import-untyped]

from eventpipe.sinks.http import ssl_context
from eventpipe.sinks.kafka.config import KafkaSinkConfig
from eventpipe.sinks.kafka.partition import KeyPartitioner

# Kafka's own rule (kafka.common.internals.Topic): legal characters and at most 249 of them.
TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")

_CODEC_AVAILABLE = {
    "gzip": codec.has_gzip,
    "snappy": codec.has_snappy,
    "lz4": codec.has_lz4,
    "zstd": codec.has_zstd,
}
_SASL_MECHANISMS = {"": "PLAIN", "plain": "PLAIN", "sha256": "SCRAM-SHA-256",
                    "sha512": "SCRAM-SHA-512"}


def producer_options(cfg: KafkaSinkConfig, *, where: str) -> dict[str, Any]:
    """Keyword arguments for `AIOKafkaProducer`; raises ValueError naming the bad key."""
    options: dict[str, Any] = {
        "bootstrap_servers": list(cfg.brokers),
        "client_id": cfg.client_id or "eventpipe",
        "acks": "all",
        "enable_idempotence": cfg.idempotent,
        "linger_ms": cfg.linger_ms,
        "max_batch_size": cfg.max_batch_bytes,
        "max_request_size": cfg.max_batch_bytes,
        "request_timeout_ms": cfg.request_timeout_ms,
        "compression_type": _compression(cfg.compression_codec, where=where),
        "partitioner": KeyPartitioner(),
    }
    tls_on = cfg.tls is not None and cfg.tls.enable
    sasl_on = cfg.sasl is not None and cfg.sasl.enable
    if tls_on:
        options["ssl_context"] = _tls_context(cfg, where=where)
    if sasl_on:
        assert cfg.sasl is not None
        options["sasl_mechanism"] = _SASL_MECHANISMS[cfg.sasl.mechanism]
        options["sasl_plain_username"] = cfg.sasl.username
        options["sasl_plain_password"] = cfg.sasl.password
    options["security_protocol"] = {
        (False, False): "PLAINTEXT", (True, False): "SSL",
        (False, True): "SASL_PLAINTEXT", (True, True): "SASL_SSL",
    }[(tls_on, sasl_on)]
    return options


def check_topic(topic: str, *, where: str) -> str:
    """`topic` if it is a legal Kafka topic name, else ValueError saying why."""
    if not TOPIC_NAME.fullmatch(topic) or topic in (".", ".."):
        raise ValueError(f"{where}: {topic[:300]!r} is not a legal Kafka topic name "
                         "(1-249 of a-z A-Z 0-9 . _ -)")
    return topic


def _compression(name: str, *, where: str) -> str | None:
    if name == "none":
        return None
    if not _CODEC_AVAILABLE[name]():
        raise ValueError(f"{where}.compressionCodec: {name} needs the Python package "
                         "'cramjam' (pip install 'aiokafka[snappy,lz4,zstd]')")
    return name


def _tls_context(cfg: KafkaSinkConfig, *, where: str) -> ssl.SSLContext:
    tls = cfg.tls
    assert tls is not None
    if tls.server_name:
        raise ValueError(f"{where}.tls.serverName: not supported for Kafka (the broker "
                         "addresses in metadata are the names checked)")
    try:
        context = ssl_context(tls)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from exc
    # No file and no skip-verify: TLS with the system CAs, as sarama does with an empty caFile.
    return context if context is not None else ssl.create_default_context()
