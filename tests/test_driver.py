"""The sink driver against a real spool, with a memory sink and a scripted failing sink."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventpipe.delivery import driver
from eventpipe.delivery.contract import (
    GroupRejectedError,
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)
from eventpipe.delivery.delivery import SPLIT_BUDGET, drop_tracebacks
from eventpipe.delivery.driver import (
    Delivery,
    DeliverySettings,
    IngestBacklog,
    NewData,
    SinkWorker,
)
from eventpipe.metrics import Metrics
from eventpipe.spool import Spool, SpoolFullError
from eventpipe.spool.gaps import Gap
from eventpipe.spool.rows import NewRecord, StoredRow
from eventpipe.spool.writer import SpoolWriter
from eventpipe.watch.normalize import to_record
from tests.pipeline_harness import wait_until


class MemorySink:
    """Keeps what it was sent; `script` lists outcomes for the next sends."""

    def __init__(self, name: str, script: Sequence[object] = ()) -> None:
        self.name = name
        self.script = list(script)
        self.received: list[bytes] = []
        self.attempts = 0
        self.started = self.closed = False

    @property
    def needs_event(self) -> bool:
        return False

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        if b'"reason":"Poison"' in body:
            raise PermanentSinkError("template failed: poison")
        return body

    async def start(self) -> None:
        self.started = True

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        self.attempts += 1
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, SinkError):
                raise outcome
            if callable(outcome):
                failures: list[ItemFailure] = outcome(payloads)
                self.received.extend(p for i, p in enumerate(payloads)
                                     if i not in {f.index for f in failures})
                return failures
        self.received.extend(payloads)
        return []

    async def close(self) -> None:
        self.closed = True


class EveryoneRouter:
    needs_event = False
    reads_object_metadata = False
    static_receivers = frozenset({"a", "b"})

    def receivers_for(self, event: dict[str, Any]) -> frozenset[str]:
        return self.static_receivers


def make_events(n: int, start: int = 0, reason: str = "BackOff") -> list[Any]:
    out = []
    for i in range(start, start + n):
        obj = {"metadata": {"uid": f"u{i}", "resourceVersion": str(i + 1), "namespace": "ns"},
               "involvedObject": {"kind": "Pod", "name": f"p{i}"}, "reason": reason}
        out.append(to_record(obj, orjson.dumps(obj)))
    return out


@contextlib.asynccontextmanager
async def workers(spool: Spool, *sinks: MemorySink, ingest: IngestBacklog | None = None,
                  **settings: Any) -> AsyncIterator[tuple[NewData, list[SinkWorker]]]:
    stopping = asyncio.Event()
    new_data = NewData()
    metrics = Metrics()
    delivery_settings = DeliverySettings(initial_backoff=0.01, max_backoff=0.02, **settings)
    made = [SinkWorker(Delivery(s, router=EveryoneRouter(), settings=delivery_settings,
                                metrics=metrics, stopping=stopping),
                       spool=spool, new_data=new_data, settings=delivery_settings,
                       metrics=metrics, stopping=stopping, ingest=ingest) for s in sinks]
    tasks = [asyncio.create_task(w.run()) for w in made]
    try:
        yield new_data, made
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[Spool]:
    opened = await Spool.open(tmp_path / "spool.db")
    yield opened
    await opened.close()


async def test_failing_receiver_recovers_and_does_not_slow_the_other(spool: Spool) -> None:
    refused = RetriableSinkError("connection refused")
    flaky = MemorySink("a", [refused] * 5 + [RetriableSinkError("HTTP 500")] * 5)
    healthy = MemorySink("b")
    async with workers(spool, flaky, healthy) as (new_data, _):
        await spool.append(make_events(100), stream="s", resource_version="100")
        new_data.notify()
        await wait_until(lambda: len(healthy.received) == 100, what="healthy receiver")
        assert len(flaky.received) < 100  # it is still failing while the other is done
        await wait_until(lambda: len(flaky.received) == 100, what="flaky receiver recovers")
    assert flaky.attempts >= 11
    assert flaky.received == healthy.received
    assert await spool.cursor("a") == await spool.cursor("b") == 100
    assert flaky.started and flaky.closed


async def test_partial_failure_retries_only_failed_items(spool: Spool) -> None:
    def second_item_fails(payloads: Sequence[bytes]) -> list[ItemFailure]:
        return [ItemFailure(1, RetriableSinkError("429 for item"))]

    sink = MemorySink("a", [second_item_fails])
    async with workers(spool, sink) as (new_data, _):
        await spool.append(make_events(3), stream="s", resource_version="3")
        new_data.notify()
        await wait_until(lambda: len(sink.received) == 3, what="all three")
    uids = [orjson.loads(p)["metadata"]["uid"] for p in sink.received]
    assert uids == ["u0", "u2", "u1"]


async def test_permanent_rejection_goes_to_dead_letters_and_replays(spool: Spool) -> None:
    def reject_one(payloads: Sequence[bytes]) -> list[ItemFailure]:
        return [ItemFailure(0, PermanentSinkError("HTTP 400: entry too far behind"))]

    sink = MemorySink("a", [reject_one])
    async with workers(spool, sink) as (new_data, made):
        await spool.append(make_events(5) + make_events(1, start=5, reason="Poison"),
                           stream="s", resource_version="6")
        new_data.notify()
        await wait_until(lambda: made[0].acked_seq == 6, what="batch acked")
    assert len(sink.received) == 4
    letters = await spool.dead_letters("a")
    assert [(seq, error) for _, seq, error, *_ in letters] == [
        (1, "HTTP 400: entry too far behind"), (6, "encode: template failed: poison")]
    # Replay of dead letters: the sink now takes seq 1; seq 6 still cannot encode.
    delivery = Delivery(sink, router=None, settings=DeliverySettings(), metrics=Metrics())
    rows = await spool.read_seqs([1, 6])
    payloads, kept, dead = delivery.encode(rows, route=False)
    more_dead, completed = await delivery.send(payloads, kept)
    assert completed and not more_dead and [s for s, _ in dead] == [6]
    await spool.resolve_dead_letters("a", [r[0] for r in kept])
    assert [seq for _, seq, *_ in await spool.dead_letters("a")] == [6]


async def test_max_attempts_dead_letters_after_giving_up(spool: Spool) -> None:
    sink = MemorySink("a", [RetriableSinkError("HTTP 503")] * 10)
    async with workers(spool, sink, max_attempts=3) as (new_data, made):
        await spool.append(make_events(2), stream="s", resource_version="2")
        new_data.notify()
        await wait_until(lambda: made[0].acked_seq == 2, what="gave up and acked")
    assert sink.attempts == 3 and not sink.received
    assert [e for *_, e, _, _, _ in await spool.dead_letters("a")] == [
        "gave up after 3 attempts"] * 2


async def test_retry_after_is_honoured() -> None:
    sink = MemorySink("a", [RetriableSinkError("429", retry_after=0.3)])
    delivery = Delivery(sink, router=None, metrics=Metrics(),
                        settings=DeliverySettings(initial_backoff=0.001, max_backoff=0.001))
    loop = asyncio.get_running_loop()
    started = loop.time()
    dead, completed = await delivery.send([b"x"], [StoredRow(1, "u", "1", 0.0, None, "", "", "",
                                                             "", "", 1, 1, b"x")])
    assert completed and not dead
    assert loop.time() - started >= 0.3


class GatedSpool:
    """The spool as the writer sees it, with appends held until `gate` opens."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def append_counted(self, records: list[NewRecord], *, stream: str,
                             resource_version: str | None) -> list[tuple[int, int]]:
        self.holding.set()
        await self.gate.wait()
        return await self.spool.append_counted(records, stream=stream,
                                               resource_version=resource_version)

    async def forget(self, uid: str) -> None:
        await self.spool.forget(uid)

    async def head_seq(self) -> int:
        return await self.spool.head_seq()

    async def record_gap(self, *, stream: str, namespace: str, from_rv: str, to_rv: str,
                         after_seq: int) -> Gap:
        return await self.spool.record_gap(stream=stream, namespace=namespace,
                                           from_rv=from_rv, to_rv=to_rv, after_seq=after_seq)

    async def reject(self, rows: list[tuple[str, str, bytes]]) -> None:
        await self.spool.reject(rows)


class WatchedBacklog:
    """The writer's backlog signal, recording whether a worker is waiting on it."""

    def __init__(self, writer: SpoolWriter) -> None:
        self.writer = writer
        self.waiting = 0
        self.waited = asyncio.Event()

    async def wait_caught_up(self, within: float) -> None:
        self.waiting += 1
        self.waited.set()
        try:
            await self.writer.wait_caught_up(within)
        finally:
            self.waiting -= 1


@contextlib.asynccontextmanager
async def backlogged_writer(spool: Spool) -> AsyncIterator[tuple[SpoolWriter, GatedSpool]]:
    """A writer (commits of up to 40) holding 60 events, its first commit held at the gate."""
    gated = GatedSpool(spool)
    writer = SpoolWriter(gated, metrics=Metrics(), batch_max_events=10, batch_max_wait=0.01)
    task = asyncio.create_task(writer.run())
    try:
        for record in make_events(60, start=1000):
            await writer.put("s", record.resource_version, record)
        await asyncio.wait_for(gated.holding.wait(), 10)
        yield writer, gated
    finally:
        gated.gate.set()
        await asyncio.wait_for(writer.wait_idle(), 10)
        task.cancel()


async def test_sinks_wait_while_the_spool_writer_is_backlogged(spool: Spool) -> None:
    # Storing goes first: with more buffered than one commit takes, a worker holds its next
    # batch until the writer has caught up (eventpipe.spool.writer.wait_caught_up).
    await spool.append(make_events(5), stream="s", resource_version="5")
    sink = MemorySink("a")
    async with backlogged_writer(spool) as (writer, gated):
        backlog = WatchedBacklog(writer)
        async with workers(spool, sink, ingest=backlog):
            await asyncio.wait_for(backlog.waited.wait(), 10)
            assert backlog.waiting == 1 and sink.received == []  # held, not delivering
            gated.gate.set()  # the commits go through; 20 left is less than one commit
            await wait_until(lambda: len(sink.received) == 65, what="delivery after catch-up")
    assert await spool.cursor("a") == 65


def returns_without_waiting(coro: Coroutine[Any, Any, None]) -> bool:
    """Whether `coro` finishes without suspending once."""
    try:
        coro.send(None)
    except StopIteration:
        return True
    coro.close()
    return False


class FullSpool(GatedSpool):
    """A spool at its byte budget under `whenFull: block`: every append is refused."""

    async def append_counted(self, records: list[NewRecord], *, stream: str,
                             resource_version: str | None) -> list[tuple[int, int]]:
        self.holding.set()
        raise SpoolFullError("spool byte budget reached")


async def test_a_full_spool_does_not_hold_the_sinks(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer that cannot commit is stuck, not slow: the sinks go on at once (their acks
    # are what retention needs), not once per INGEST_FIRST_MAX_WAIT.
    monkeypatch.setattr(driver, "INGEST_FIRST_MAX_WAIT", 3600.0)
    await spool.append(make_events(5), stream="s", resource_version="5")
    full = FullSpool(spool)
    writer = SpoolWriter(full, metrics=Metrics(), batch_max_events=10, batch_max_wait=0.01,
                         full_errors=(SpoolFullError,))
    task = asyncio.create_task(writer.run())
    sink = MemorySink("a")
    try:
        for record in make_events(60, start=1000):
            await writer.put("s", record.resource_version, record)
        await asyncio.wait_for(full.holding.wait(), 10)
        for record in make_events(15, start=2000):  # the watch goes on filling the buffer
            await writer.put("s", record.resource_version, record)
        # ... and that does not make the writer look merely slow again (no loop turn since
        # the failure, so this is the state the workers will see).
        assert returns_without_waiting(writer.wait_caught_up(3600.0))
        async with workers(spool, sink, ingest=writer):
            await wait_until(lambda: len(sink.received) == 5, within=10,
                             what="delivery while the spool is full")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_backlogged_writer_does_not_starve_the_sinks(
        spool: Spool, monkeypatch: pytest.MonkeyPatch) -> None:
    # The wait is bounded: a writer that stays backlogged (here: held for good) still lets
    # every worker send a batch per INGEST_FIRST_MAX_WAIT.
    monkeypatch.setattr(driver, "INGEST_FIRST_MAX_WAIT", 0.05)
    await spool.append(make_events(5), stream="s", resource_version="5")
    sink = MemorySink("a")
    async with backlogged_writer(spool) as (writer, _):
        async with workers(spool, sink, ingest=writer):
            await wait_until(lambda: len(sink.received) == 5, what="delivery while backlogged")
        assert await spool.head_seq() == 5  # the writer was still held all along


class RefusingSink(MemorySink):
    """Refuses any request holding a poisoned payload as a whole (a 400 for the request)."""

    def __init__(self, name: str, poison: set[bytes], *, retry_once: bytes = b"") -> None:
        super().__init__(name)
        self.poison = poison
        self.retry_once = retry_once
        self.requests: list[list[bytes]] = []

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        self.requests.append(list(payloads))
        if self.retry_once in payloads:
            self.retry_once = b""
            raise RetriableSinkError("HTTP 503")
        if len(payloads) > 1 and self.poison & set(payloads):
            raise GroupRejectedError("HTTP 400: one entry is bad")
        if self.poison & set(payloads):
            return [ItemFailure(0, PermanentSinkError("HTTP 400: bad entry"))]
        self.received.extend(payloads)
        return []


def rows_of(payloads: list[bytes]) -> list[StoredRow]:
    return [StoredRow(i + 1, f"u{i}", "1", 0.0, None, "", "", "", "", "", 1, 1, p)
            for i, p in enumerate(payloads)]


async def test_a_refused_group_is_halved_until_the_bad_item_stands_alone() -> None:
    payloads = [f"p{i}".encode() for i in range(8)]
    sink = RefusingSink("a", {b"p5"})
    delivery = Delivery(sink, router=None, settings=DeliverySettings(), metrics=Metrics())
    dead, completed = await delivery.send(payloads, rows_of(payloads))
    assert completed and dead == [(6, "HTTP 400: bad entry")]
    assert sink.received == [p for p in payloads if p != b"p5"]  # halves in spool order
    assert len(sink.requests) <= 1 + 2 * 3  # one split per level of the halving


async def test_a_retriable_half_is_retried_alone_after_the_other_half_went_through() -> None:
    payloads = [f"p{i}".encode() for i in range(4)]
    sink = RefusingSink("a", {b"p0"}, retry_once=b"p3")
    delivery = Delivery(sink, router=None, metrics=Metrics(),
                        settings=DeliverySettings(initial_backoff=0.001, max_backoff=0.001))
    dead, completed = await delivery.send(payloads, rows_of(payloads))
    assert completed and [seq for seq, _ in dead] == [1]
    assert sink.received == [b"p1", b"p2", b"p3"]
    assert sink.requests[-1] == [b"p2", b"p3"]  # only the half that was not delivered


async def test_splitting_is_bounded_per_batch() -> None:
    payloads = [f"p{i}".encode() for i in range(256)]
    sink = RefusingSink("a", set(payloads))  # every entry bad: isolating each would cost 511
    delivery = Delivery(sink, router=None, settings=DeliverySettings(), metrics=Metrics())
    dead, completed = await delivery.send(payloads, rows_of(payloads))
    assert completed and len(dead) == 256 and not sink.received
    assert len(sink.requests) == 1 + SPLIT_BUDGET


class Request:
    """What a sink builds per attempt (the joined body of a batch); weakly referable."""


class CyclicFailingSink(MemorySink):
    """Fails `failures` times the way the HTTP sinks do: the error bound to a local of a frame
    its traceback holds, and that frame holding the request it built for this attempt."""

    def __init__(self, name: str, failures: int) -> None:
        super().__init__(name)
        self.failures = failures
        self.requests: list[weakref.ref[Request]] = []

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        request = Request()
        self.requests.append(weakref.ref(request))
        if len(self.requests) <= self.failures:
            error = RetriableSinkError("HTTP 503")
            try:
                raise error
            except RetriableSinkError as exc:
                told = exc  # as `WebhookSink._post` keeps it
                raise told from None
        return await super().send(payloads)


async def test_a_failed_attempt_does_not_keep_its_request_alive() -> None:
    # With the cyclic GC off, anything still held after the send is held by a reference
    # cycle through the errors' tracebacks: it used to be one request body per retry.
    sink = CyclicFailingSink("a", failures=3)
    delivery = Delivery(sink, router=None, metrics=Metrics(),
                        settings=DeliverySettings(initial_backoff=0.001, max_backoff=0.001))
    gc.collect()
    gc.disable()
    try:
        dead, completed = await delivery.send([b"x"], rows_of([b"x"]))
        alive = [ref for ref in sink.requests if ref() is not None]
    finally:
        gc.enable()
    assert completed and not dead and sink.received == [b"x"]
    assert len(sink.requests) == 4 and not alive


def test_drop_tracebacks_follows_causes_and_contexts() -> None:
    try:
        try:
            raise OSError("reset")
        except OSError as cause:
            raise RetriableSinkError("POST failed") from cause
    except RetriableSinkError as exc:
        error = exc
    assert error.__cause__ is not None and error.__cause__.__traceback__ is not None
    drop_tracebacks(error)
    assert error.__traceback__ is None and error.__cause__.__traceback__ is None
