"""The `metrics` receiver: each event routed here adds its count delta to the event counter.

A config with a `metrics` receiver moves the event counter from the spool writer (which
counts every stored version) to this receiver's delivery, so the route's matches and drops,
the receiver's `filters` and `maxEventAgeSeconds` decide what is counted (a route matching only
`type: Warning` counts only Warnings). The counter belongs to the running process
(`eventpipe.metrics`); the app binds it with `bind_metrics` before delivery starts.

Idempotency: a batch repeated after a crash is counted again, but the counter starts from zero
in a new process anyway, which Prometheus' increase() reads as a counter reset.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventpipe.delivery.contract import ItemFailure, PermanentSinkError
from eventpipe.metrics import EventCounter, EventKey, Metrics
from eventpipe.sinks.metrics.config import MetricsSinkConfig
from eventpipe.spool.rows import StoredRow

Increment = tuple[EventKey, int]
"""(namespace, kind, name, reason, type) and the occurrences the version adds."""


class MetricsSink:
    """Adds the count delta of every event it is sent to an `EventCounter`."""

    def __init__(self, *, name: str, new_series_at_zero: bool) -> None:
        self.name = name
        self.new_series_at_zero = new_series_at_zero
        self._counter: EventCounter | None = None

    def bind_metrics(self, metrics: Metrics) -> None:
        """Count into the process's `events_total`."""
        counter = metrics.events
        counter.new_series_at_zero = self.new_series_at_zero
        self._counter = counter

    @property
    def needs_event(self) -> bool:
        """False: the stored row's columns carry the labels and the delta."""
        return False

    def encode(self, event: dict[str, object] | None, body: bytes) -> Increment:
        """Unused: the driver calls `encode_row`, since the delta is the spool's, not the
        body's."""
        raise PermanentSinkError("the metrics receiver encodes stored rows only")

    def encode_row(self, row: StoredRow, event: dict[str, object] | None) -> Increment:
        """The row's label set and count delta."""
        return (row.namespace, row.kind, row.name, row.reason, row.type), row.count_delta

    async def start(self) -> None:
        """Nothing to open; refuses to run unbound (e.g. from `eventpipe replay`)."""
        if self._counter is None:
            raise ValueError(f"receiver {self.name!r}: a metrics receiver counts inside "
                             "`eventpipe run`; there is nothing to replay to")

    async def send(self, batch: Sequence[Increment]) -> Sequence[ItemFailure]:
        """Count the batch; never fails."""
        if self._counter is not None:
            self._counter.inc_many(item for item in batch if item[1])
        return []

    async def close(self) -> None:
        """Nothing to release."""


def build_sink(config: MetricsSinkConfig, *, name: str, cluster_name: str) -> MetricsSink:
    """The metrics receiver's sink (the counter's cluster label is set by the app)."""
    return MetricsSink(name=name, new_series_at_zero=config.new_series_at_zero)
