"""The one place that owns batching, routing, retry, acking and dead letters for every sink.

A worker per receiver reads the spool after its own cursor, keeps the events its route sends it,
encodes them with the sink, sends, and advances its cursor and dead letters in one transaction.
A sink only says success, retry (whole batch or some items) or reject. Delivery is at least
once: the cursor moves only after the sink confirmed, so a crash repeats at most the batch in
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from eventpipe.metrics import Metrics
from eventpipe.sinks.base import PermanentSinkError, Sink, SinkError
from eventpipe.spool.records import S_BODY, S_EVENT_TIME, S_OBSERVED_AT, S_SEQ, StoredRow
from eventpipe.watch.backoff import exponential_backoff

log = logging.getLogger("eventpipe.driver")


class EventRouter(Protocol):
    """The compiled route tree (eventpipe.routing.Router)."""

    needs_event: bool
    static_receivers: frozenset[str]

    def receivers_for(self, event: dict[str, Any]) -> frozenset[str]: ...


class SpoolReader(Protocol):
    """What a worker needs from the spool."""

    async def cursor(self, receiver: str) -> int: ...
    async def read_after(self, after_seq: int, limit: int) -> list[StoredRow]: ...
    async def ack(self, receiver: str, acked_seq: int, *,
                  dead: Sequence[tuple[int, str]] = ()) -> None: ...
    async def head_seq(self) -> int: ...


class NewData:
    """Wakes sink workers when the writer commits, without polling the database."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def token(self) -> asyncio.Event:
        """Take before reading; waiting on it then cannot miss a commit that follows the read."""
        return self._event

    def notify(self) -> None:
        """Called after each commit."""
        self._event.set()
        self._event = asyncio.Event()


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Per-receiver batching and retry."""

    batch_max_events: int = 500
    """Most events per send."""
    batch_max_wait: float = 0.0
    """How long a partial batch may wait for more events (0: send what is there)."""
    initial_backoff: float = 0.5
    """First retry delay (full jitter)."""
    max_backoff: float = 300.0
    """Largest retry delay."""
    max_attempts: int = 0
    """Attempts before an event is dead-lettered; 0 retries forever."""
    max_event_age: float = 0.0
    """Events older than this when observed are not routed (resmo maxEventAgeSeconds); 0: off."""


class Delivery:
    """Sends batches through one sink with retry and dead letters; shared by worker and replay."""

    def __init__(self, sink: Sink, *, router: EventRouter | None, settings: DeliverySettings,
                 metrics: Metrics, stopping: asyncio.Event | None = None) -> None:
        self.sink = sink
        self.name = sink.name
        self._router = router
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping or asyncio.Event()
        routed_by_event = router is not None and router.needs_event
        self._parse = sink.needs_event or routed_by_event
        # A route without conditions sends every event to the same receivers: decide once.
        self._never_routed = (router is not None and not router.needs_event
                              and self.name not in router.static_receivers)
        # Labelled children resolved once: labels() locks and hashes on every call.
        self._sent = metrics.sink_sent.labels(self.name)
        self._latency = metrics.delivery_latency.labels(self.name)

    def encode(self, rows: Sequence[StoredRow], *, route: bool = True
               ) -> tuple[list[bytes], list[StoredRow], list[tuple[int, str]]]:
        """Route and encode rows: (payloads, the rows they came from, dead letters)."""
        payloads: list[bytes] = []
        kept: list[StoredRow] = []
        dead: list[tuple[int, str]] = []
        router = self._router if route else None
        if route and self._never_routed:
            return payloads, kept, dead
        max_age = self._settings.max_event_age if route else 0.0
        name = self.name
        for row in rows:
            if max_age and row[S_EVENT_TIME] is not None and (
                    row[S_OBSERVED_AT] - row[S_EVENT_TIME] > max_age):
                continue
            event: dict[str, Any] | None = None
            try:
                if self._parse:
                    event = orjson.loads(row[S_BODY])
                if router is not None and router.needs_event and (
                        name not in router.receivers_for(event or {})):
                    continue
                payloads.append(self.sink.encode(event, row[S_BODY]))
                kept.append(row)
            except (PermanentSinkError, orjson.JSONDecodeError) as exc:
                dead.append((row[S_SEQ], f"encode: {exc}"))
        if dead:  # a template that cannot render: counted and logged like a send rejection
            self._metrics.sink_dead_letters.labels(self.name).inc(len(dead))
            log.error("events dead-lettered", extra={
                "receiver": self.name, "count": len(dead), "first_error": dead[0][1][:300]})
        return payloads, kept, dead

    async def send(self, payloads: list[bytes], rows: list[StoredRow]
                   ) -> tuple[list[tuple[int, str]], bool]:
        """Send with retry; returns (dead letters, completed). Not completed: stopping."""
        dead: list[tuple[int, str]] = []
        pending = list(range(len(payloads)))
        delays = self._backoff()
        attempts = 0
        while pending:
            attempts += 1
            retry_after: float | None = None
            try:
                failures = await self.sink.send([payloads[i] for i in pending])
            except SinkError as exc:
                self._metrics.sink_failures.labels(self.name, _reason(exc)).inc()
                if not exc.retriable:
                    dead.extend((rows[i][S_SEQ], str(exc)) for i in pending)
                    break
                log.warning("send failed, will retry", extra={
                    "receiver": self.name, "error": str(exc), "attempt": attempts})
                retry_after = exc.retry_after
            except Exception as exc:  # an unexpected sink bug must not lose events: retry
                self._metrics.sink_failures.labels(self.name, "unexpected").inc()
                log.exception("sink raised unexpectedly", extra={"receiver": self.name})
                del exc
            else:
                retry: list[int] = []
                failed = {f.index: f.error for f in failures}
                now = time.time()
                observe = self._latency.observe
                for pos, index in enumerate(pending):
                    error = failed.get(pos)
                    if error is None:
                        observe(now - rows[index][S_OBSERVED_AT])
                    elif error.retriable:
                        retry.append(index)
                    else:
                        dead.append((rows[index][S_SEQ], str(error)))
                self._sent.inc(len(pending) - len(failed))
                if failed:
                    self._metrics.sink_failures.labels(self.name, "partial").inc()
                pending = retry
                if not pending:
                    break
                retry_after = max((e.retry_after or 0.0 for e in failed.values()), default=None)
            if self._settings.max_attempts and attempts >= self._settings.max_attempts:
                dead.extend((rows[i][S_SEQ], f"gave up after {attempts} attempts")
                            for i in pending)
                break
            self._metrics.sink_retries.labels(self.name).inc()
            delay = max(next(delays), retry_after or 0.0)
            if await _wait_or_stop(self._stopping, delay):
                return dead, False
        if dead:
            self._metrics.sink_dead_letters.labels(self.name).inc(len(dead))
            log.error("events dead-lettered", extra={
                "receiver": self.name, "count": len(dead), "first_error": dead[0][1][:300]})
        return dead, True

    def _backoff(self) -> Iterator[float]:
        return exponential_backoff(initial=self._settings.initial_backoff,
                                   maximum=self._settings.max_backoff)


class SinkWorker:
    """Delivers the spool to one receiver, forever, from its own cursor."""

    def __init__(self, delivery: Delivery, *, spool: SpoolReader, new_data: NewData,
                 settings: DeliverySettings, metrics: Metrics, stopping: asyncio.Event) -> None:
        self.delivery = delivery
        self.name = delivery.name
        self._spool = spool
        self._new_data = new_data
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping
        self.acked_seq = 0

    async def run(self) -> None:
        """Loop until `stopping` is set; the batch in flight is finished or left unacked."""
        sink = self.delivery.sink
        await sink.start()
        try:
            self.acked_seq = await self._spool.cursor(self.name)
            while not self._stopping.is_set():
                token = self._new_data.token()
                rows = await self._spool.read_after(self.acked_seq,
                                                    self._settings.batch_max_events)
                if not rows:
                    await self._update_lag(None)
                    await _wait_any(token, self._stopping, within=5.0)
                    continue
                if await self._should_wait_for_more(rows, token):
                    continue
                payloads, kept, dead = self.delivery.encode(rows)
                if payloads:
                    more_dead, completed = await self.delivery.send(payloads, kept)
                    if not completed:
                        return
                    dead.extend(more_dead)
                last = rows[-1][S_SEQ]
                await self._spool.ack(self.name, last, dead=sorted(dead))
                self.acked_seq = last
                await self._update_lag(rows[-1])
        finally:
            await sink.close()

    async def _should_wait_for_more(self, rows: list[StoredRow], token: asyncio.Event) -> bool:
        wait = self._settings.batch_max_wait
        if not wait or len(rows) >= self._settings.batch_max_events:
            return False
        remaining = rows[0][S_OBSERVED_AT] + wait - time.time()
        if remaining <= 0:
            return False
        await _wait_any(token, self._stopping, within=remaining)
        return not self._stopping.is_set()

    async def refresh_lag(self) -> None:
        """Recompute lag from the spool; the app calls this on a timer so the gauges keep
        rising while a receiver is down (the worker itself only updates them after acks)."""
        head = await self._spool.head_seq()
        behind = max(0, head - self.acked_seq)
        age = 0.0
        if behind:
            oldest = await self._spool.read_after(self.acked_seq, 1)
            if oldest:
                age = max(0.0, time.time() - oldest[0][S_OBSERVED_AT])
        self._metrics.sink_lag_events.labels(self.name).set(behind)
        self._metrics.sink_lag_seconds.labels(self.name).set(age)

    async def _update_lag(self, last: StoredRow | None) -> None:
        head = await self._spool.head_seq()
        behind = max(0, head - self.acked_seq)
        self._metrics.sink_lag_events.labels(self.name).set(behind)
        age = time.time() - last[S_OBSERVED_AT] if (last is not None and behind) else 0.0
        self._metrics.sink_lag_seconds.labels(self.name).set(max(0.0, age))


def _reason(exc: SinkError) -> str:
    return "retriable" if exc.retriable else "permanent"


async def _wait_or_stop(stopping: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds; True if `stopping` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay)
    return stopping.is_set()


async def _wait_any(first: asyncio.Event, second: asyncio.Event, *, within: float) -> None:
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
