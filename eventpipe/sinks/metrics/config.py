"""Config of the `metrics` receiver: the event counter fed by a route (`metrics: {}`)."""

from __future__ import annotations

from pydantic import Field

from eventpipe.sinks.config import SinkConfig


class MetricsSinkConfig(SinkConfig):
    """Count the events routed here in `{metricsNamePrefix}events_total` (then that counter
    counts only them, not every stored event)."""

    new_series_at_zero: bool = Field(
        default=True, alias="newSeriesAtZero",
        description="A series seen for the first time is exported at 0 until the next scrape, "
        "then with its occurrences, so `increase(...) > 0` fires for an event that happens "
        "once (Prometheus needs two samples to see an increase).",
    )

    def waits_for_batch(self) -> bool:
        """False: counting gains nothing from a fuller batch."""
        return False
