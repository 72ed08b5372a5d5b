"""Sending one batch through one sink: routing, encoding, retry with backoff, partial
success, splitting what the peer refused as a whole, dead letters, and the per-receiver storm
control (`filters`, `throttle` summaries, the rate limit). `Delivery` is shared by the
long-running `SinkWorker` (eventpipe.delivery.driver) and `eventpipe replay`. With an enricher
(eventpipe.enrich), `prepare` awaits a batch's lookups once and `encode` adds what the cache
knows to each event before routing and encoding.

Splitting: items a sink reports with a `GroupRejectedError` (a 413, or a 400 for a request of
several entries) are sent again at once in two halves, each half again, until the faulty items
stand alone and are dead-lettered with the peer's message; the others are delivered. Halves go
in spool order. At most `SPLIT_BUDGET` extra sends per batch: past it a refused group is
dead-lettered as a whole, so one bad batch cannot turn into thousands of requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol

import orjson

from eventpipe.core.backoff import exponential_backoff
from eventpipe.delivery.contract import (
    GroupRejectedError,
    P,
    PermanentSinkError,
    RowEncoder,
    Sink,
    SinkError,
)
from eventpipe.delivery.filters import RowCheck
from eventpipe.delivery.ratelimit import Sleep, TokenBucket
from eventpipe.delivery.settings import DeliverySettings
from eventpipe.enrich.apply import reference
from eventpipe.enrich.served import ServedReference, served_reference
from eventpipe.metrics import Metrics
from eventpipe.metrics.histograms import observe_runs
from eventpipe.spool.rows import StoredRow

if TYPE_CHECKING:
    from eventpipe.enrich import Enricher

log = logging.getLogger("eventpipe.delivery")

SPLIT_BUDGET = 64
"""Most extra sends one batch may cost by splitting refused groups in halves."""


class EventRouter(Protocol):
    """The compiled route tree (eventpipe.routing.Router)."""

    needs_event: bool
    reads_object_metadata: bool
    static_receivers: frozenset[str]

    def receivers_for(self, event: dict[str, Any]) -> frozenset[str]: ...


class Delivery(Generic[P]):
    """Sends batches through one sink with retry and dead letters; shared by worker and replay."""

    def __init__(self, sink: Sink[P], *, router: EventRouter | None, settings: DeliverySettings,
                 metrics: Metrics, stopping: asyncio.Event | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Sleep | None = None,
                 enricher: Enricher | None = None) -> None:
        """`clock` and `sleep` pace the rate limit (tests pass fake time). With an
        `enricher` every event is parsed and enriched from its cache before routing."""
        self.sink = sink
        self.name = sink.name
        self._router = router
        self._settings = settings
        self._metrics = metrics
        self._stopping = stopping or asyncio.Event()
        routed_by_event = router is not None and router.needs_event
        self._enricher = enricher
        # A sink that encodes from the served bytes, routed without reading the event, gets
        # enrichment spliced into those bytes from the reference alone: no parse per event.
        self._served = (enricher is not None and not sink.needs_event
                        and not routed_by_event and not isinstance(sink, RowEncoder))
        self._parse = sink.needs_event or routed_by_event or (
            enricher is not None and not self._served)
        self._prepared: dict[int, dict[str, Any]] = {}  # seq -> event parsed by prepare()
        self._references: dict[int, ServedReference] = {}  # seq -> reference read by prepare()
        self._ready: dict[int, bytes] = {}  # seq -> served bytes prepare() enriched
        # A route without conditions sends every event to the same receivers: decide once.
        self._never_routed = (router is not None and not router.needs_event
                              and self.name not in router.static_receivers)
        # Labelled children resolved once: labels() locks and hashes on every call.
        self._sent = metrics.sink_sent.labels(self.name)
        self._latency = metrics.delivery_latency.labels(self.name)
        self._bucket = None if not settings.rate_per_minute else TokenBucket(
            settings.rate_per_minute, clock=clock, sleep=sleep or self._pause)
        self._splits_left = SPLIT_BUDGET
        self.finished = 0
        """Leading payloads of the last `send` delivered or dead-lettered (all of them once
        it completed)."""
        self._encode_row = sink.encode_row if isinstance(sink, RowEncoder) else None

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
            if not _passes(row, max_age, filters):
                continue
            if router is not None:
                try:
                    event = orjson.loads(row.body)
                except orjson.JSONDecodeError:
                    continue
                if self._enricher is not None:
                    event = self._enricher.enrich(event, count=False)
                if self.name not in router.receivers_for(event):
                    continue
            kept.append(row)
        return kept

    async def prepare(self, rows: Sequence[StoredRow]) -> None:
        """Before `encode`, with enrichment: read the references of the rows this receiver may
        send (from the served bytes where the sink encodes those, else by parsing the row;
        kept for `encode`, so each is read once) and let the enricher fetch what they need,
        within its deadline. Without an enricher: nothing."""
        if self._enricher is None or self._never_routed:
            return
        max_age = self._settings.max_event_age
        filters = self._settings.filters
        served = self._served
        enricher = self._enricher
        prepared: dict[int, dict[str, Any]] = {}
        references: dict[int, ServedReference] = {}
        ready: dict[int, bytes] = {}
        refs: list[Mapping[str, Any]] = []
        for row in rows:
            if not _passes(row, max_age, filters):
                continue
            if served:
                found = served_reference(row.body)
                if found is not None:
                    # The usual case: the cache has the object at that version, nothing to
                    # wait for: enriched now, once.
                    body = enricher.enrich_served(found, row.body, ready=True)
                    if body is not None:
                        ready[row.seq] = body
                    else:
                        references[row.seq] = found
                        refs.append(found[2])
                    continue
            try:  # not contextlib.suppress: this runs per row
                event = orjson.loads(row.body)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                prepared[row.seq] = event
                if (section := reference(event)) is not None:
                    refs.append(section[1])
        # Only the latest batch: bounded, and a miss just reads the row again.
        self._prepared, self._references, self._ready = prepared, references, ready
        # A route or a template on labels/annotations must not see a cold cache: at start,
        # wait for it.
        wait_sync = self._settings.wait_for_metadata or (
            self._router is not None and self._router.reads_object_metadata)
        await enricher.prefetch_references(refs, wait_sync=wait_sync)

    def encode(self, rows: Sequence[StoredRow], *, route: bool = True,
               admit: Callable[[StoredRow], bool] | None = None
               ) -> tuple[list[P], list[StoredRow], list[tuple[int, str]]]:
        """Route, filter and encode rows: (payloads, the rows they came from, dead letters).

        `admit` (the throttle) sees each routed row last and may hold it back."""
        payloads: list[P] = []
        kept: list[StoredRow] = []
        dead: list[tuple[int, str]] = []
        router = self._router if route else None
        if route and self._never_routed:
            return payloads, kept, dead
        max_age = self._settings.max_event_age if route else 0.0
        filters = self._settings.filters if route else None
        name = self.name
        enricher = self._enricher
        prepared = self._prepared
        served = self._served
        encode_row = self._encode_row
        for row in rows:
            if not _passes(row, max_age, filters):
                continue
            event: dict[str, Any] | None = None
            try:
                if served and enricher is not None:
                    body = self._served_body(enricher, row)
                    if body is not None:
                        if admit is None or admit(row):
                            payloads.append(self.sink.encode(None, body))
                            kept.append(row)
                        continue
                    event = prepared.pop(row.seq, None) or orjson.loads(row.body)
                elif self._parse:
                    event = prepared.pop(row.seq, None) or orjson.loads(row.body)
                if enricher is not None and event is not None:
                    event = enricher.enrich(event)
                if router is not None and router.needs_event and (
                        name not in router.receivers_for(event or {})):
                    continue
                if admit is not None and not admit(row):
                    continue
                payloads.append(self.sink.encode(event, row.body) if encode_row is None
                                else encode_row(row, event))
                kept.append(row)
            except (PermanentSinkError, orjson.JSONDecodeError) as exc:
                dead.append((row.seq, f"encode: {exc}"))
        if enricher is not None:
            enricher.flush_counts()
        if dead:  # a template that cannot render: counted and logged like a send rejection
            self._metrics.sink_dead_letters.labels(self.name).inc(len(dead))
            log.error("events dead-lettered", extra={
                "receiver": self.name, "count": len(dead), "first_error": dead[0][1][:300]})
        return payloads, kept, dead

    def _served_body(self, enricher: Enricher, row: StoredRow) -> bytes | None:
        """The row's served bytes enriched without parsing them, or None: parse."""
        body = self._ready.pop(row.seq, None)
        if body is not None:
            return body
        found = self._references.pop(row.seq, None) or served_reference(row.body)
        return None if found is None else enricher.enrich_served(found, row.body)

    async def send(self, payloads: list[P], rows: list[StoredRow]
                   ) -> tuple[list[tuple[int, str]], bool]:
        """Send with retry; returns (dead letters, completed). Not completed: stopping, and
        `finished` says how many leading payloads were delivered or dead-lettered before.

        A receiver that sends one request per event (`one_by_one`) is given one payload at a
        time, so a stop between two requests leaves everything before it confirmed."""
        dead: list[tuple[int, str]] = []
        self._splits_left = SPLIT_BUDGET
        pending = list(range(len(payloads)))
        self.finished = 0
        delays = self._backoff()
        attempts = 0
        while pending:
            self.finished = pending[0]
            batch = pending
            if self._settings.one_by_one:
                if self._stopping.is_set():
                    return dead, False
                batch = pending[:1]
            if self._bucket is not None:
                # Only what the rate limit allows now; the rest follows in order.
                granted = await self._bucket.take(len(batch))
                if not granted:
                    return dead, False
                batch = batch[:granted]
            attempts += 1
            retry, retry_after = await self._attempt(payloads, rows, batch, dead, attempts)
            pending = retry + pending[len(batch):]
            if not retry:
                attempts, delays = 0, self._backoff()  # progress: the next items start afresh
                continue
            if self._settings.max_attempts and attempts >= self._settings.max_attempts:
                dead.extend((rows[i].seq, f"gave up after {attempts} attempts")
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
        self.finished = len(payloads)
        return dead, True

    async def _attempt(self, payloads: list[P], rows: list[StoredRow], batch: list[int],
                       dead: list[tuple[int, str]], attempt: int
                       ) -> tuple[list[int], float | None]:
        """One send of `batch` (indices), and of the halves of what it refused as a whole;
        permanent failures go to `dead`. Returns the indices to retry (ascending) and the
        longest Retry-After the peer asked for."""
        try:
            failures = await self.sink.send([payloads[i] for i in batch])
        except GroupRejectedError as exc:
            drop_tracebacks(exc)
            self._metrics.sink_failures.labels(self.name, _reason(exc)).inc()
            return await self._split(payloads, rows, batch, exc, dead, attempt)
        except SinkError as exc:
            drop_tracebacks(exc)
            self._metrics.sink_failures.labels(self.name, _reason(exc)).inc()
            if not exc.retriable:
                dead.extend((rows[i].seq, str(exc)) for i in batch)
                return [], None
            log.warning("send failed, will retry", extra={
                "receiver": self.name, "error": str(exc), "attempt": attempt})
            return batch, exc.retry_after
        except Exception as exc:  # an unexpected sink bug must not lose events: retry
            self._metrics.sink_failures.labels(self.name, "unexpected").inc()
            log.exception("sink raised unexpectedly", extra={"receiver": self.name})
            drop_tracebacks(exc)
            return batch, None
        retry: list[int] = []
        refused: list[int] = []
        refusal: GroupRejectedError | None = None
        failed = {f.index: f.error for f in failures}
        delivered: list[float] = []
        for pos, index in enumerate(batch):
            error = failed.get(pos)
            if error is None:
                delivered.append(rows[index].observed_at)
            elif error.retriable:
                retry.append(index)
            elif isinstance(error, GroupRejectedError):
                refused.append(index)
                refusal = error
            else:
                dead.append((rows[index].seq, str(error)))
        now = time.time()
        # The rows of one spool commit share observed_at: one histogram update per commit.
        observe_runs(self._latency, (now - observed_at for observed_at in delivered))
        self._sent.inc(len(batch) - len(failed))
        if failed:
            self._metrics.sink_failures.labels(self.name, "partial").inc()
        retry_after = max((e.retry_after or 0.0 for e in failed.values()), default=None)
        if refusal is not None:
            more, after = await self._split(payloads, rows, refused, refusal, dead, attempt)
            retry = sorted(retry + more)
            if after is not None:
                retry_after = max(retry_after or 0.0, after)
        return retry, retry_after

    async def _split(self, payloads: list[P], rows: list[StoredRow], group: list[int],
                     error: GroupRejectedError, dead: list[tuple[int, str]], attempt: int
                     ) -> tuple[list[int], float | None]:
        """Send a refused group again in two halves (see the module docstring); a lone item,
        or any group once the budget is spent, is dead-lettered with the peer's message."""
        if len(group) == 1 or self._splits_left < 2:
            dead.extend((rows[i].seq, str(error)) for i in group)
            return [], None
        self._splits_left -= 2
        middle = len(group) // 2
        retry: list[int] = []
        retry_after: float | None = None
        for half in (group[:middle], group[middle:]):
            more, after = await self._attempt(payloads, rows, half, dead, attempt)
            retry += more
            if after is not None:
                retry_after = max(retry_after or 0.0, after)
        return retry, retry_after

    def _backoff(self) -> Iterator[float]:
        return exponential_backoff(initial=self._settings.initial_backoff,
                                   maximum=self._settings.max_backoff)


def drop_tracebacks(exc: BaseException) -> None:
    """Detach the tracebacks of a caught sink error and of its causes and contexts.

    A sink's error is often referenced from a frame its own traceback holds (`error = ...;
    raise error`, or `told = ...; raise told from ...`): a reference cycle, which only the
    cyclic GC frees, and its full collections are rare in a process with a large long-lived
    heap. Until then each failed attempt kept its frames' locals alive, among them the request
    body (a batch of 500 events joined: ~0.5 MiB, mmapped by malloc), so RSS grew with every
    retry while a receiver was down (docs/performance.md, "Soak"). Only the message, the
    status and Retry-After are read after the catch, so the tracebacks are not needed.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = None
        pending.extend(e for e in (error.__cause__, error.__context__) if e is not None)


def _reason(exc: SinkError) -> str:
    return "retriable" if exc.retriable else "permanent"


async def _wait_or_stop(stopping: asyncio.Event, delay: float) -> bool:
    """Sleep `delay` seconds; True if `stopping` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay)
    return stopping.is_set()


def _passes(row: StoredRow, max_age: float, filters: RowCheck | None) -> bool:
    """maxEventAgeSeconds (age when observed) and the receiver's `filters`, from row columns."""
    if max_age and row.event_time is not None and (
            row.observed_at - row.event_time > max_age):
        return False
    return filters is None or filters(row)
