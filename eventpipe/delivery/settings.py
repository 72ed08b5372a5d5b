"""A receiver's delivery settings, resolved once from its config keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from eventpipe.delivery.config import DEFAULT_KEY
from eventpipe.delivery.filters import RowCheck, compile_filters

if TYPE_CHECKING:
    from eventpipe.config.receivers import ReceiverBase


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Per-receiver batching and retry."""

    batch_max_events: int = 500
    """Most events per send."""
    batch_max_wait: float = 0.0
    """How long a partial batch may wait for more events (0: send what is there)."""
    initial_backoff: float = 0.5
    """First retry delay (full jitter)."""
    max_backoff: float = 30.0
    """Largest retry delay."""
    max_attempts: int = 0
    """Attempts before an event is dead-lettered; 0 retries forever."""
    max_event_age: float = 0.0
    """Events older than this when observed are not routed (resmo maxEventAgeSeconds); 0: off."""
    filters: RowCheck | None = None
    """The receiver's compiled `filters:` (None: none)."""
    throttle_window: float = 0.0
    """Throttle window in seconds; 0: no throttle."""
    throttle_key: tuple[str, ...] = DEFAULT_KEY
    """Fields that make two events the same for the throttle."""
    rate_per_minute: int = 0
    """Most events sent per minute (token bucket, burst = the same); 0: no limit."""
    one_by_one: bool = False
    """The receiver sends one request per event: hand it one at a time, so a shutdown acks
    every event confirmed before it (the sink config's `sends_each_event`)."""
    wait_for_metadata: bool = False
    """The receiver's templates read what enrichment adds (eventpipe.layout.reads): at start,
    its events wait for the metadata caches, as those of a route on labels do."""


def delivery_settings(receiver: ReceiverBase, *, max_event_age: float = 0.0
                      ) -> DeliverySettings:
    """The driver settings of one receiver from its `batch`, `retry`, `filters`, `throttle`
    and `rateLimit` keys; a filter regex that does not compile is a ValueError naming it.
    Without `batch.maxWait`, receivers that gain nothing from a fuller batch (the sink config's
    `waits_for_batch`) send what is there."""
    max_wait = receiver.batch.max_wait
    if "max_wait" not in receiver.batch.model_fields_set and not receiver.sink.waits_for_batch():
        max_wait = 0.0
    return DeliverySettings(
        batch_max_events=receiver.batch.max_events, batch_max_wait=max_wait,
        initial_backoff=receiver.retry.initial_backoff,
        max_backoff=receiver.retry.max_backoff, max_attempts=receiver.retry.max_attempts,
        max_event_age=float(max_event_age),
        filters=compile_filters(receiver.filters, receiver=receiver.name),
        throttle_window=receiver.throttle.window if receiver.throttle else 0.0,
        throttle_key=tuple(receiver.throttle.key) if receiver.throttle else DEFAULT_KEY,
        rate_per_minute=receiver.rate_limit.per_minute if receiver.rate_limit else 0,
        one_by_one=receiver.sink.sends_each_event(),
        wait_for_metadata=_reads_object_metadata(receiver.sink.model_dump(by_alias=True)))


def _reads_object_metadata(config: dict[str, Any]) -> bool:
    """eventpipe.layout.reads on a receiver's config; the template engine is imported only
    when the config holds a template (`{{`), so a receiver without one never loads it."""
    if b"{{" not in orjson.dumps(config, default=str):
        return False
    from eventpipe.layout.reads import reads_object_metadata

    return reads_object_metadata(config)
