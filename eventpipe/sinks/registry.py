"""Which sink module serves which receiver key; adding a sink is one entry in `_BUILDERS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventpipe.config import Receiver
from eventpipe.delivery.config import DEFAULT_KEY
from eventpipe.delivery.contract import Sink
from eventpipe.delivery.driver import DeliverySettings
from eventpipe.delivery.filters import compile_filters


def _file(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    from eventpipe.sinks.file import FileSink

    return FileSink(name=name, path=cfg.path, layout=cfg.layout, max_size_mb=cfg.max_size,
                    max_age_days=cfg.max_age, max_backups=cfg.max_backups, de_dot=cfg.de_dot,
                    cluster_name=cluster_name)


def _stdout(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    from eventpipe.sinks.stdout import StdoutSink

    return StdoutSink(name=name, layout=cfg.layout, de_dot=cfg.de_dot, cluster_name=cluster_name)


def _webhook(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    from eventpipe.sinks.webhook import WebhookSink

    return WebhookSink(name=name, endpoint=cfg.endpoint, headers=cfg.headers, layout=cfg.layout,
                       method=cfg.method, batch=cfg.batch, timeout=cfg.timeout,
                       content_type=cfg.content_type, username=cfg.username,
                       password=cfg.password, bearer_token=cfg.bearer_token, tls=cfg.tls,
                       cluster_name=cluster_name)


def _elasticsearch(cfg: Any, name: str, cluster_name: str, kind: str = "elasticsearch"
                   ) -> Sink[Any]:
    from eventpipe.sinks.elasticsearch import ElasticsearchSink

    return ElasticsearchSink(
        name=name, hosts=cfg.urls(), index=cfg.index, index_format=cfg.index_format,
        use_event_id=cfg.use_event_id, de_dot=cfg.de_dot, layout=cfg.layout,
        doc_type=cfg.type, username=cfg.username, password=cfg.password, api_key=cfg.api_key,
        headers=cfg.headers, tls=cfg.tls, max_bulk_bytes=cfg.max_bulk_bytes,
        timeout=cfg.timeout, cluster_name=cluster_name, kind=kind)


def _opensearch(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    return _elasticsearch(cfg, name, cluster_name, kind="opensearch")


def _loki(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    from eventpipe.sinks.loki import LokiSink

    return LokiSink(name=name, config=cfg, cluster_name=cluster_name)


def _kafka(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    from eventpipe.sinks.kafka import KafkaSink

    return KafkaSink(name=name, cfg=cfg, cluster_name=cluster_name)


def _im(cfg: Any, name: str, cluster_name: str) -> Sink[Any]:
    from eventpipe.sinks.im_base import build_im_sink

    return build_im_sink(cfg, name=name, cluster_name=cluster_name)


_BUILDERS: dict[str, Callable[[Any, str, str], Sink[Any]]] = {
    "file": _file,
    "stdout": _stdout,
    "elasticsearch": _elasticsearch,
    "opensearch": _opensearch,
    "webhook": _webhook,
    "loki": _loki,
    "kafka": _kafka,
    "wecom": _im,
    "dingtalk": _im,
    "feishu": _im,
    "slack": _im,
    "bark": _im,
}

# Local sinks gain nothing from waiting for a fuller batch; network sinks use batch.maxWait.
# IM bots take one message per request, so a fuller batch saves nothing either.
_NO_WAIT_BY_DEFAULT = frozenset({"file", "stdout", "wecom", "dingtalk", "feishu", "slack",
                                 "bark"})


def build_sink(receiver: Receiver, *, cluster_name: str) -> Sink[Any]:
    """Create the sink for a receiver; layouts compile here (ValueError names the problem)."""
    builder = _BUILDERS.get(receiver.sink_type)
    if builder is None:
        raise ValueError(f"receiver {receiver.name!r}: sink type {receiver.sink_type!r} "
                         "has no implementation registered")
    return builder(receiver.sink, receiver.name, cluster_name)


def delivery_settings(receiver: Receiver, *, max_event_age: float = 0.0) -> DeliverySettings:
    """The driver settings of one receiver from its `batch`, `retry`, `filters`, `throttle`
    and `rateLimit` keys; a filter regex that does not compile is a ValueError naming it."""
    max_wait = receiver.batch.max_wait
    per_event_webhook = receiver.sink_type == "webhook" and not getattr(
        receiver.sink, "batch", False)
    if "max_wait" not in receiver.batch.model_fields_set and (
            receiver.sink_type in _NO_WAIT_BY_DEFAULT or per_event_webhook):
        max_wait = 0.0
    return DeliverySettings(
        batch_max_events=receiver.batch.max_events, batch_max_wait=max_wait,
        initial_backoff=receiver.retry.initial_backoff,
        max_backoff=receiver.retry.max_backoff, max_attempts=receiver.retry.max_attempts,
        max_event_age=float(max_event_age),
        filters=compile_filters(receiver.filters, receiver=receiver.name),
        throttle_window=receiver.throttle.window if receiver.throttle else 0.0,
        throttle_key=tuple(receiver.throttle.key) if receiver.throttle else DEFAULT_KEY,
        rate_per_minute=receiver.rate_limit.per_minute if receiver.rate_limit else 0)
