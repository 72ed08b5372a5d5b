"""The event streams, each run against all exporters at once on one namespace of the real
control plane, and how a stream is judged finished.

Every exporter gets its own webhook and its own process; all watch the same namespace, so each
sees the very versions the API server served. A stream ends when every exporter has delivered
all of them, or none has delivered anything new for `QUIET_S` (and, after a receiver outage,
at least `AFTER_OUTAGE_S` have passed: eventpipe's default retry delay doubles up to 30 s
(`retry.maxBackoff`) with full jitter, so after an outage its next try can come half a minute
later, and a retry that lands must still be counted).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.peers.cluster import EventWriter
from bench.peers.exporters import Exporter
from bench.peers.sink import WebhookSink, token

QUIET_S = 15.0
AFTER_OUTAGE_S = 60.0
LIMIT_S = 600.0
READY_S = 90.0
MARK_EVERY_S = 2.0
RESTART_GAP_S = 20.0


@dataclass
class Stream:
    """The exporters, their sinks and the writer of one scenario."""

    writer: EventWriter
    exporters: list[Exporter]
    sinks: dict[str, WebhookSink]
    down_s: float
    warmups: int = 0

    def warm_up(self) -> None:
        """Write marker events (not counted), one every `MARK_EVERY_S`, until every exporter
        delivered one of them: each is then watching (one that watches "from now" misses the
        markers written before its watch opened)."""
        marks: list[str] = []
        deadline = time.monotonic() + READY_S
        next_mark = time.monotonic()
        while not all(any(sink.received[m] for m in marks) for sink in self.sinks.values()):
            for exporter in self.exporters:
                if exporter.proc is not None and exporter.proc.poll() is not None:
                    raise RuntimeError(f"{exporter.name} exited ({exporter.proc.returncode})")
            if time.monotonic() > deadline:
                late = [n for n, s in self.sinks.items() if not any(s.received[m] for m in marks)]
                raise RuntimeError(f"{', '.join(late)} delivered no marker within {READY_S}s")
            if time.monotonic() >= next_mark:
                self.warmups += 1
                name = f"warm{self.warmups}"
                self.writer.create(name)
                self.writer.served.discard(token(name, 1))
                marks.append(token(name, 1))
                next_mark += MARK_EVERY_S
            time.sleep(0.1)

    def settle(self, at_least_s: float = 0.0) -> None:
        """Wait until all delivered everything served, or all went quiet (see module doc)."""
        started = last_change = time.monotonic()
        seen = self._delivered()
        while time.monotonic() - started < LIMIT_S:
            now = self._delivered()
            if now != seen:
                seen, last_change = now, time.monotonic()
            served = len(self.writer.served)
            if all(n >= served for n in now):
                return
            if (time.monotonic() - last_change >= QUIET_S
                    and time.monotonic() - started >= at_least_s):
                return
            time.sleep(0.25)

    def _delivered(self) -> list[int]:
        return [sink.tally(self.writer.served)[0] for sink in self.sinks.values()]

    def create_many(self, prefix: str, n: int, *, age_s: float = 0.0,
                    per_second: float = 0.0) -> None:
        """`n` new events named `<prefix><i>`, as fast as the API takes them or at a rate."""
        started = time.monotonic()
        for i in range(n):
            if per_second:
                time.sleep(max(0.0, started + i / per_second - time.monotonic()))
            self.writer.create(f"{prefix}{i:04d}", age_s=age_s)


def burst(stream: Stream) -> None:
    """300 new events as fast as the API server takes them: the baseline."""
    stream.create_many("b", 300)
    stream.settle()


def updates(stream: Stream) -> None:
    """50 events whose count goes 1 → 20, one update of each per round (1,000 versions)."""
    names = [f"u{i:04d}" for i in range(50)]
    for name in names:
        stream.writer.create(name)
    for _ in range(19):
        for name in names:
            stream.writer.bump(name)
    stream.settle()


def sink_down(stream: Stream) -> None:
    """20 events, then every receiver down for `down_s` while 2 events/s arrive, then up and
    20 more."""
    stream.create_many("a", 20)
    for sink in stream.sinks.values():
        sink.down()
    stream.create_many("d", int(stream.down_s * 2), per_second=2.0)
    for sink in stream.sinks.values():
        sink.up()
    stream.create_many("z", 20)
    stream.settle(at_least_s=AFTER_OUTAGE_S)


def restart(stream: Stream) -> None:
    """50 events; every exporter stopped (SIGTERM); 50 events over the `RESTART_GAP_S` they
    are down (a pod's restart: reschedule, image, start); started again; 50 more once they
    watch."""
    stream.create_many("a", 50)
    stream.settle()
    for exporter in stream.exporters:
        exporter.stop()
    stream.create_many("d", 50, per_second=50 / RESTART_GAP_S)
    for exporter in stream.exporters:
        exporter.start()
    stream.warm_up()
    stream.create_many("z", 50)
    stream.settle()


def old(stream: Stream) -> None:
    """50 events stamped 30 s in the past (a late reporter, past resmo's 5 s cut-off), then
    50 stamped now."""
    stream.create_many("o", 50, age_s=30.0)
    stream.create_many("n", 50)
    stream.settle()


SCENARIOS: dict[str, Callable[[Stream], None]] = {
    "burst": burst, "updates": updates, "sink_down": sink_down, "restart": restart, "old": old}
