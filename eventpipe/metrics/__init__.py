"""Every metric eventpipe exports, created once per process and passed in (no globals).

Two families:
- the event counter `{metricsNamePrefix}events_total` (resmo-compatible name), incremented by
  the count delta of each stored version, so `increase(...[5m])` counts occurrences, not
  versions. Its series are kept in a plain dict (the hot path is one dict update) with idle
  expiry, a cap and an optional `involved_object_name` label (config `metrics:`), exported by
  a custom collector.
- self metrics `eventpipe_*` for each pipeline stage, names fixed here and listed in
  docs/operations.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

EventKey = tuple[str, str, str, str, str]
"""(namespace, involved_object_kind, involved_object_name, reason, event_type)"""


class EventCounter(Collector):
    """The `events_total` counter with idle-series expiry and a series cap.

    `series_ttl` 0 keeps idle series forever. With `object_name_label` off the name label is
    left out of every series (a stable label set), so objects of one kind and reason share one.
    """

    def __init__(
        self, *, prefix: str, cluster: str, series_ttl: float = 3600.0, max_series: int = 10_000,
        object_name_label: bool = True, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = f"{prefix}events_total"
        self._cluster = cluster
        self._ttl = series_ttl
        self._max = max_series
        self._with_name = object_name_label
        self._clock = clock
        self._series: dict[EventKey, list[float]] = {}  # key -> [value, last update]
        self.overflow = 0
        """Increments that found the cap reached and were not given a new series."""
        self.new_series_at_zero = False
        """Export a new series at 0 until the next collect, then with its value (set by the
        `metrics` receiver): Prometheus sees 0 then n, so increase() counts a first
        occurrence. Amounts added before that collect wait in `_fresh`."""
        self._fresh: dict[EventKey, float] = {}

    def inc(self, key: EventKey, amount: int) -> None:
        """Add `amount` occurrences for one event label set."""
        self.inc_many(((key, amount),))

    def inc_many(self, increments: Iterable[tuple[EventKey, int]]) -> None:
        """Add occurrences for several label sets (a committed group: one clock read)."""
        now = self._clock()
        series = self._series
        with_name = self._with_name
        expired = False  # at the cap, idle series are looked for once per call, not per key
        for key, amount in increments:
            if not with_name:
                key = (key[0], key[1], "", key[3], key[4])
            entry = series.get(key)
            fresh = self._fresh
            if entry is not None:
                if fresh and key in fresh:
                    fresh[key] += amount
                else:
                    entry[0] += amount
                entry[1] = now
            else:
                if len(series) >= self._max:
                    made_room = not expired and self._made_room(now)
                    expired = True
                    if not made_room:
                        self.overflow += amount
                        continue
                if self.new_series_at_zero:
                    series[key] = [0.0, now]
                    fresh[key] = float(amount)
                else:
                    series[key] = [float(amount), now]

    def _made_room(self, now: float) -> bool:
        self._expire(now)
        return len(self._series) < self._max

    def _expire(self, now: float) -> None:
        if self._ttl <= 0:
            return
        cutoff = now - self._ttl
        for key in [k for k, v in self._series.items() if v[1] < cutoff]:
            del self._series[key]
            self._fresh.pop(key, None)

    def collect(self) -> Iterator[Metric]:
        """Export live series (expiring idle ones first)."""
        self._expire(self._clock())
        labels = ["namespace", "involved_object_kind", "involved_object_name", "reason",
                  "event_type"]
        if not self._with_name:
            del labels[2]
        if self._cluster:
            labels.append("cluster")
        family = CounterMetricFamily(
            self.name.removesuffix("_total"),
            "Kubernetes Event occurrences (sum of count deltas of every stored version).",
            labels=labels,
        )
        extra = [self._cluster] if self._cluster else []
        for key, (value, _) in self._series.items():
            values = list(key) if self._with_name else [key[0], key[1], key[3], key[4]]
            family.add_metric([*values, *extra], value)
        # Exported at 0 once: from now on these series show what was added meanwhile.
        for key, amount in self._fresh.items():
            self._series[key][0] += amount
        self._fresh.clear()
        yield family
        overflow = CounterMetricFamily(
            "eventpipe_event_series_overflow",
            "Event occurrences not given a series because the series cap was reached.",
        )
        overflow.add_metric([], float(self.overflow))
        yield overflow


class Metrics:
    """The process's registry and every self metric."""

    def __init__(self, *, prefix: str = "event_exporter_", cluster: str = "",
                 series_ttl: float = 3600.0, max_series: int = 10_000,
                 object_name_label: bool = True) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = EventCounter(prefix=prefix, cluster=cluster, series_ttl=series_ttl,
                                   max_series=max_series, object_name_label=object_name_label)
        r.register(self.events)
        self.watch_events = Counter("eventpipe_watch_events", "Watch notifications received.",
                                    ["stream", "type"], registry=r)
        self.watch_restarts = Counter("eventpipe_watch_restarts",
                                      "Watch streams re-opened, by reason.", ["stream", "reason"],
                                      registry=r)
        self.watch_relists = Counter("eventpipe_watch_relists", "Full relists, by reason.",
                                     ["stream", "reason"], registry=r)
        self.watch_gaps = Counter("eventpipe_watch_gaps",
                                  "Relists after 410 Gone: stretches of resourceVersions no "
                                  "watch saw (recorded in the spool's gaps table).", ["stream"],
                                  registry=r)
        self.occurrences_missed = Counter(
            "eventpipe_occurrences_missed",
            "Occurrences a relist's counts show whose own versions were never seen.",
            ["stream"], registry=r)
        self.watch_malformed = Counter("eventpipe_watch_malformed",
                                       "Watch lines that could not be parsed as an Event.",
                                       ["stream"], registry=r)
        self.watch_up = Gauge("eventpipe_watch_up", "1 while the watch stream is established.",
                              ["stream"], registry=r)
        self.spool_events = Counter("eventpipe_spool_events",
                                    "Event versions committed to the spool.", registry=r)
        self.spool_duplicates = Counter("eventpipe_spool_duplicates",
                                        "Versions skipped because the spool already had them.",
                                        registry=r)
        self.spool_dropped = Counter("eventpipe_spool_dropped",
                                     "Event versions dropped from the spool, by reason.",
                                     ["reason"], registry=r)
        self.spool_full = Counter("eventpipe_spool_full",
                                  "Appends refused because the spool is full (byte budget "
                                  "or disk).",
                                  registry=r)
        self.spool_rows = Gauge("eventpipe_spool_rows", "Event versions in the spool.",
                                registry=r)
        self.spool_bytes = Gauge("eventpipe_spool_bytes", "Spool database size in bytes.",
                                 registry=r)
        self.spool_budget = Gauge("eventpipe_spool_budget_bytes",
                                  "Configured spool byte budget (0 = none).", registry=r)
        self.spool_commit_seconds = Histogram(
            "eventpipe_spool_commit_seconds", "Time to commit one group of events.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r)
        self.sink_sent = Counter("eventpipe_sink_sent", "Events delivered, per receiver.",
                                 ["receiver"], registry=r)
        self.sink_failures = Counter("eventpipe_sink_failures",
                                     "Failed send attempts, per receiver and reason.",
                                     ["receiver", "reason"], registry=r)
        self.sink_retries = Counter("eventpipe_sink_retries", "Batches retried, per receiver.",
                                    ["receiver"], registry=r)
        self.sink_ack_failures = Counter(
            "eventpipe_sink_ack_failures", "Acks the spool could not store (retried without "
            "re-sending), per receiver.", ["receiver"], registry=r)
        self.sink_dead_letters = Counter("eventpipe_sink_dead_letters",
                                         "Events moved to dead letters, per receiver.",
                                         ["receiver"], registry=r)
        self.sink_throttled = Counter("eventpipe_sink_throttled",
                                      "Events a receiver's throttle held back (counted into "
                                      "the window's summary), per receiver.",
                                      ["receiver"], registry=r)
        self.sink_restamped = Counter("eventpipe_sink_restamped",
                                      "Loki entries stamped with another time than the "
                                      "event's, to stay inside Loki's window, per receiver.",
                                      ["receiver"], registry=r)
        self.sink_loki_metadata = Gauge("eventpipe_sink_loki_structured_metadata",
                                        "1 while a Loki receiver sends re-stamped entries' "
                                        "structured metadata, 0 when it is off or Loki "
                                        "refused it (structuredMetadata: auto), per receiver.",
                                        ["receiver"], registry=r)
        self.sink_lag_events = Gauge("eventpipe_sink_lag_events",
                                     "Spooled events not yet acked by the receiver.",
                                     ["receiver"], registry=r)
        self.sink_lag_seconds = Gauge("eventpipe_sink_lag_seconds",
                                      "Age of the oldest event not yet acked by the receiver.",
                                      ["receiver"], registry=r)
        self.delivery_latency = Histogram(
            "eventpipe_delivery_latency_seconds", "Time from spooling an event to its delivery.",
            ["receiver"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=r)
