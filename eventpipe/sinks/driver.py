"""The one place that owns batching, routing, retry, acking and dead letters for every sink.

A worker per receiver reads the spool after its own cursor, keeps the events its route sends it,
encodes them with the sink, sends, and advances its cursor and dead letters in one transaction.
A sink only says success, retry (whole batch or some items) or reject. Delivery is at least
once: the cursor moves only after the sink confirmed, so a crash repeats at most the batch in
flight.

Storm control sits here too, per receiver: `filters` (eventpipe.sinks.filters) narrow what the
route sends, a `throttle` (eventpipe.sinks.throttle) holds back repeats of one event and sends
one summary per window, a token bucket (eventpipe.sinks.ratelimit) paces the sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from eventpipe.config.storm import DEFAULT_KEY
from eventpipe.metrics import Metrics
from eventpipe.sinks.base import PermanentSinkError, Sink, SinkError
from eventpipe.sinks.filters import RowCheck
from eventpipe.sinks.ratelimit import Sleep, TokenBucket
from eventpipe.sinks.throttle import Throttle, restore_from_spool
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
    async def read_seqs(self, seqs: Sequence[int]) -> list[StoredRow]: ...
    async def read_since(self, *, since: float | None = None, from_seq: int | None = None,
                         after_seq: int = 0, limit: int) -> list[StoredRow]: ...
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
    filters: RowCheck | None = None
    """The receiver's compiled `filters:` (None: none)."""
    throttle_window: float = 0.0
    """Throttle window in seconds; 0: no throttle."""
    throttle_key: tuple[str, ...] = DEFAULT_KEY
    """Fields that make two events the same for the throttle."""
    rate_per_minute: int = 0
    """Most events sent per minute (token bucket, burst = the same); 0: no limit."""


class Delivery:
    """Sends batches through one sink with retry and dead letters; shared by worker and replay."""

    def __init__(self, sink: Sink, *, router: EventRouter | None, settings: DeliverySettings,
                 metrics: Metrics, stopping: asyncio.Event | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Sleep | None = None
                 ) -> None:
        """`clock` and `sleep` pace the rate limit (tests pass fake time)."""
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
        self._bucket = None if not settings.rate_per_minute else TokenBucket(
            settings.rate_per_minute, clock=clock, sleep=sleep or self._pause)

    async def _pause(self, delay: float) -> bool:
        return await _wait_or_stop(self._stopping, delay)

    def selected(self, rows: Sequence[StoredRow]) -> list[StoredRow]:
        """The rows the route and `filters` send here, without encoding them (what the
        throttle restores its windows from)."""
        if self._never_routed:
            return []
        max_age = self._settings.max_event_age
        filters = self._settings.filters
        router = self._router if self._router is not None and self._router.needs_event else None
        kept = []
        for row in rows:
            if max_age and row[S_EVENT_TIME] is not None and (
                    row[S_OBSERVED_AT] - row[S_EVENT_TIME] > max_age):
                continue
            if filters is not None and not filters(row):
                continue
            if router is not None:
                try:
                    event = orjson.loads(row[S_BODY])
                except orjson.JSONDecodeError:
                    continue
                if self.name not in router.receivers_for(event):
                    continue
            kept.append(row)
        return kept

    def encode(self, rows: Sequence[StoredRow], *, route: bool = True,
               admit: Callable[[StoredRow], bool] | None = None
               ) -> tuple[list[bytes], list[StoredRow], list[tuple[int, str]]]:
        """Route, filter and encode rows: (payloads, the rows they came from, dead letters).

        `admit` (the throttle) sees each routed row last and may hold it back."""
        payloads: list[bytes] = []
        kept: list[StoredRow] = []
        dead: list[tuple[int, str]] = []
        router = self._router if route else None
        if route and self._never_routed:
            return payloads, kept, dead
        max_age = self._settings.max_event_age if route else 0.0
        filters = self._settings.filters if route else None
        name = self.name
        for row in rows:
            if max_age and row[S_EVENT_TIME] is not None and (
                    row[S_OBSERVED_AT] - row[S_EVENT_TIME] > max_age):
                continue
            if filters is not None and not filters(row):
                continue
            event: dict[str, Any] | None = None
            try:
                if self._parse:
                    event = orjson.loads(row[S_BODY])
                if router is not None and router.needs_event and (
                        name not in router.receivers_for(event or {})):
                    continue
                if admit is not None and not admit(row):
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
            batch = pending
            if self._bucket is not None:
                # Only what the rate limit allows now; the rest follows in order.
                granted = await self._bucket.take(len(pending))
                if not granted:
                    return dead, False
                batch = pending[:granted]
            attempts += 1
            retry, retry_after = await self._attempt(payloads, rows, batch, dead, attempts)
            pending = retry + pending[len(batch):]
            if not retry:
                attempts, delays = 0, self._backoff()  # progress: the next items start afresh
                continue
            if self._settings.max_attempts and attempts >= self._settings.max_attempts:
                dead.extend((rows[i][S_SEQ], f"gave up after {attempts} attempts")
                            for i in retry)
                pending = pending[len(retry):]
                attempts, delays = 0, self._backoff()
                continue
            self._metrics.sink_retries.labels(self.name).inc()
            delay = max(next(delays), retry_after or 0.0)
            if await _wait_or_stop(self._stopping, delay):
                return dead, False
        if dead:
            self._metrics.sink_dead_letters.labels(self.name).inc(len(dead))
            log.error("events dead-lettered", extra={
                "receiver": self.name, "count": len(dead), "first_error": dead[0][1][:300]})
        return dead, True

    async def _attempt(self, payloads: list[bytes], rows: list[StoredRow], batch: list[int],
                       dead: list[tuple[int, str]], attempt: int
                       ) -> tuple[list[int], float | None]:
        """One send of `batch` (indices); permanent failures go to `dead`. Returns the
        indices to retry and the longest Retry-After the peer asked for."""
        try:
            failures = await self.sink.send([payloads[i] for i in batch])
        except SinkError as exc:
            self._metrics.sink_failures.labels(self.name, _reason(exc)).inc()
            if not exc.retriable:
                dead.extend((rows[i][S_SEQ], str(exc)) for i in batch)
                return [], None
            log.warning("send failed, will retry", extra={
                "receiver": self.name, "error": str(exc), "attempt": attempt})
            return batch, exc.retry_after
        except Exception as exc:  # an unexpected sink bug must not lose events: retry
            self._metrics.sink_failures.labels(self.name, "unexpected").inc()
            log.exception("sink raised unexpectedly", extra={"receiver": self.name})
            del exc
            return batch, None
        retry: list[int] = []
        failed = {f.index: f.error for f in failures}
        now = time.time()
        observe = self._latency.observe
        for pos, index in enumerate(batch):
            error = failed.get(pos)
            if error is None:
                observe(now - rows[index][S_OBSERVED_AT])
            elif error.retriable:
                retry.append(index)
            else:
                dead.append((rows[index][S_SEQ], str(error)))
        self._sent.inc(len(batch) - len(failed))
        if failed:
            self._metrics.sink_failures.labels(self.name, "partial").inc()
        return retry, max((e.retry_after or 0.0 for e in failed.values()), default=None)

    def _backoff(self) -> Iterator[float]:
        return exponential_backoff(initial=self._settings.initial_backoff,
                                   maximum=self._settings.max_backoff)


class SinkWorker:
    """Delivers the spool to one receiver, forever, from its own cursor."""

    def __init__(self, delivery: Delivery, *, spool: SpoolReader, new_data: NewData,
                 settings: DeliverySettings, metrics: Metrics, stopping: asyncio.Event,
                 clock: Callable[[], float] = time.time) -> None:
        """`clock` is the wall clock the spool stamps `observed_at` with (throttle windows)."""
        self.delivery = delivery
        self.name = delivery.name
        self._spool = spool
        self._new_data = new_data
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping
        self._clock = clock
        self.acked_seq = 0
        self.throttle: Throttle | None = None
        if settings.throttle_window:
            self.throttle = Throttle(window=settings.throttle_window, key=settings.throttle_key,
                                     on_suppress=metrics.sink_throttled.labels(self.name).inc)

    async def run(self) -> None:
        """Loop until `stopping` is set; the batch in flight is finished or left unacked."""
        sink = self.delivery.sink
        await sink.start()
        try:
            self.acked_seq = await self._spool.cursor(self.name)
            throttle = self.throttle
            if throttle is not None:
                await restore_from_spool(throttle, self._spool, acked_seq=self.acked_seq,
                                         now=self._clock(), selected=self.delivery.selected)
            while not self._stopping.is_set():
                token = self._new_data.token()
                rows = await self._spool.read_after(self.acked_seq,
                                                    self._settings.batch_max_events)
                read = len(rows)
                if throttle is not None:
                    # Stream time: summaries of windows that ended go out before anything
                    # observed after their end is acked (what a restart relies on).
                    now = rows[0][S_OBSERVED_AT] if rows else self._clock()
                    if not await self._send_summaries(throttle, now):
                        return
                    rows = throttle.before_next_end(rows)
                if not rows:
                    await self._update_lag(None)
                    await _wait_any(token, self._stopping, within=self._idle_wait())
                    continue
                if len(rows) == read and await self._should_wait_for_more(rows, token):
                    continue
                payloads, kept, dead = self.delivery.encode(
                    rows, admit=throttle.admit if throttle is not None else None)
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

    def _idle_wait(self) -> float:
        """How long to sleep with nothing to read: until the next window ends, at most 5 s."""
        end = self.throttle.next_end() if self.throttle is not None else None
        return 5.0 if end is None else min(5.0, max(0.0, end - self._clock()))

    async def _send_summaries(self, throttle: Throttle, now: float) -> bool:
        """Send the summary of every window ended by `now`; False when stopping cut it off
        (the window is then rebuilt from the spool on the next start)."""
        for window in throttle.due(now):
            event = throttle.summary(window)
            assert window.last is not None
            # Stamped now, so the latency histogram shows the send, not the window.
            last = window.last
            row: StoredRow = (*last[:3], self._clock(), *last[4:])  # 3: S_OBSERVED_AT
            try:
                payloads = [self.delivery.sink.encode(event, orjson.dumps(event))]
            except PermanentSinkError as exc:
                dead = [(row[S_SEQ], f"encode throttle summary: {exc}")]
                self._metrics.sink_dead_letters.labels(self.name).inc()
            else:
                dead, completed = await self.delivery.send(payloads, [row])
                if not completed:
                    return False
            if dead:
                await self._spool.ack(self.name, self.acked_seq, dead=dead)
        return True

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
