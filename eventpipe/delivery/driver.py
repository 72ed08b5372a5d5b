"""The one place that owns batching, routing, retry, acking and dead letters for every sink.

A worker per receiver reads the spool after its own cursor, keeps the events its route sends it,
encodes them with the sink, sends, and advances its cursor and dead letters in one transaction.
A sink only says success, retry (whole batch or some items) or reject. Delivery is at least
once: the cursor moves only after the sink confirmed, so a crash repeats at most the batch in
flight.

Storm control sits here too, per receiver: `filters` (eventpipe.delivery.filters) narrow what the
route sends, a `throttle` (eventpipe.delivery.throttle) holds back repeats of one event and sends
one summary per window, a token bucket (eventpipe.delivery.ratelimit) paces the sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from eventpipe.core.tasks import EXIT_CONFIG, FatalError
from eventpipe.delivery.acking import ack_until_stored
from eventpipe.delivery.contract import PermanentSinkError
from eventpipe.delivery.delivery import Delivery, EventRouter
from eventpipe.delivery.settings import DeliverySettings
from eventpipe.delivery.throttle import Throttle, restore_from_spool
from eventpipe.metrics import Metrics
from eventpipe.spool.rows import StoredRow

log = logging.getLogger("eventpipe.driver")



__all__ = ["Delivery", "DeliverySettings", "EventRouter", "IngestBacklog", "NewData", "SinkWorker",
           "SpoolReader"]


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


class IngestBacklog(Protocol):
    """The watch → spool buffer (eventpipe.spool.writer.SpoolWriter), as sinks see it."""

    async def wait_caught_up(self, within: float) -> None: ...


# Longest a sink worker defers a batch to a backlogged spool writer: during a burst the spool
# commits first, yet every receiver still sends at least a batch about every second.
INGEST_FIRST_MAX_WAIT = 1.0


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


class SinkWorker:
    """Delivers the spool to one receiver, forever, from its own cursor."""

    def __init__(self, delivery: Delivery[Any], *, spool: SpoolReader, new_data: NewData,
                 settings: DeliverySettings, metrics: Metrics, stopping: asyncio.Event,
                 clock: Callable[[], float] = time.time,
                 ingest: IngestBacklog | None = None) -> None:
        """`clock` is the wall clock the spool stamps `observed_at` with (throttle windows).
        With `ingest`, each batch waits (briefly) while the spool writer is backlogged."""
        self.delivery = delivery
        self.name = delivery.name
        self._spool = spool
        self._new_data = new_data
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping
        self._clock = clock
        self._ingest = ingest
        self.acked_seq = 0
        self.throttle: Throttle | None = None
        if settings.throttle_window:
            self.throttle = Throttle(window=settings.throttle_window, key=settings.throttle_key,
                                     on_suppress=metrics.sink_throttled.labels(self.name).inc)

    async def run(self) -> None:
        """Loop until `stopping` is set; the batch in flight is finished or left unacked."""
        sink = self.delivery.sink
        try:
            await sink.start()
        except PermanentSinkError as exc:  # a deployment mistake: restarting cannot fix it
            raise FatalError(f"receiver {self.name} cannot start: {exc}",
                             exit_code=EXIT_CONFIG) from exc
        try:
            self.acked_seq = await self._spool.cursor(self.name)
            throttle = self.throttle
            if throttle is not None:
                await restore_from_spool(throttle, self._spool, acked_seq=self.acked_seq,
                                         now=self._clock(), selected=self.delivery.selected)
            while not self._stopping.is_set():
                if self._ingest is not None:
                    await self._ingest.wait_caught_up(INGEST_FIRST_MAX_WAIT)
                    if self._stopping.is_set():
                        return
                token = self._new_data.token()
                rows = await self._spool.read_after(self.acked_seq,
                                                    self._settings.batch_max_events)
                read = len(rows)
                if throttle is not None:
                    # Stream time: summaries of windows that ended go out before anything
                    # observed after their end is acked (what a restart relies on).
                    now = rows[0].observed_at if rows else self._clock()
                    if not await self._send_summaries(throttle, now):
                        return
                    rows = throttle.before_next_end(rows)
                if not rows:
                    await self._update_lag(None)
                    await _wait_any(token, self._stopping, within=self._idle_wait())
                    continue
                if len(rows) == read and await self._should_wait_for_more(rows, token):
                    continue
                # Enrichment lookups for the batch, gathered once with a deadline (no-op without).
                await self.delivery.prepare(rows)
                payloads, kept, dead = self.delivery.encode(
                    rows, admit=throttle.admit if throttle is not None else None)
                if payloads:
                    more_dead, completed = await self.delivery.send(payloads, kept)
                    dead.extend(more_dead)
                    if not completed:
                        await self._ack_confirmed(kept, rows, dead)
                        return
                last = rows[-1].seq
                if not await self._ack(last, sorted(dead)):
                    return
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
            row = last._replace(observed_at=self._clock())
            try:
                payloads = [self.delivery.sink.encode(event, orjson.dumps(event))]
            except PermanentSinkError as exc:
                dead = [(row.seq, f"encode throttle summary: {exc}")]
                self._metrics.sink_dead_letters.labels(self.name).inc()
            else:
                dead, completed = await self.delivery.send(payloads, [row])
                if not completed:
                    return False
            if dead and not await self._ack(self.acked_seq, dead):
                return False
        return True

    async def _ack_confirmed(self, kept: list[StoredRow], rows: list[StoredRow],
                             dead: list[tuple[int, str]]) -> None:
        """Stopping mid-batch: ack the rows before the first one not confirmed, so a restart
        sends only what was not."""
        finished = self.delivery.finished
        bound = kept[finished].seq - 1 if finished < len(kept) else rows[-1].seq
        if bound > self.acked_seq and await self._ack(
                bound, sorted(d for d in dead if d[0] <= bound)):
            self.acked_seq = bound

    async def _ack(self, acked_seq: int, dead: Sequence[tuple[int, str]]) -> bool:
        """Store the ack until it lands (eventpipe.delivery.acking); False: stopping first."""
        return await ack_until_stored(self._spool, self.name, acked_seq, dead,
                                      stopping=self._stopping,
                                      failures=self._metrics.sink_ack_failures)

    async def _should_wait_for_more(self, rows: list[StoredRow], token: asyncio.Event) -> bool:
        wait = self._settings.batch_max_wait
        if not wait or len(rows) >= self._settings.batch_max_events:
            return False
        remaining = rows[0].observed_at + wait - time.time()
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
                age = max(0.0, time.time() - oldest[0].observed_at)
        self._metrics.sink_lag_events.labels(self.name).set(behind)
        self._metrics.sink_lag_seconds.labels(self.name).set(age)

    async def _update_lag(self, last: StoredRow | None) -> None:
        head = await self._spool.head_seq()
        behind = max(0, head - self.acked_seq)
        self._metrics.sink_lag_events.labels(self.name).set(behind)
        age = time.time() - last.observed_at if (last is not None and behind) else 0.0
        self._metrics.sink_lag_seconds.labels(self.name).set(max(0.0, age))


async def _wait_any(first: asyncio.Event, second: asyncio.Event, *, within: float) -> None:
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
