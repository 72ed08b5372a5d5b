"""`rateLimit.perMinute`: a token bucket in the driver, on fake time (no real waiting)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from eventpipe.delivery.contract import ItemFailure, RetriableSinkError
from eventpipe.delivery.driver import Delivery, DeliverySettings
from eventpipe.delivery.ratelimit import TokenBucket
from eventpipe.metrics import Metrics
from eventpipe.spool.rows import StoredRow
from tests.pipeline_harness import wait_until
from tests.test_driver import MemorySink


class FakeTime:
    """A clock and a sleep that only moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> bool:
        self.sleeps.append(delay)
        self.now += delay
        return False


class TimedSink(MemorySink):
    """Records the fake time of every payload it takes."""

    def __init__(self, name: str, time: FakeTime, script: list[Any] | None = None) -> None:
        super().__init__(name, script or [])
        self.time = time
        self.at: list[float] = []

    async def send(self, payloads: Any) -> Any:
        failures = await super().send(payloads)
        self.at.extend(self.time.now for _ in range(len(payloads) - len(failures)))
        return failures


def rows(n: int) -> list[StoredRow]:
    return [StoredRow(i, f"u{i}", str(i), 0.0, None, "ns", "Pod", "p", "BackOff", "Warning", 1,
                      1, b"{}") for i in range(1, n + 1)]


def most_in_any_minute(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 60.0) for start in times)


def delivery(sink: MemorySink, time: FakeTime, per_minute: int) -> Delivery[Any]:
    settings = DeliverySettings(rate_per_minute=per_minute, initial_backoff=0.001,
                                max_backoff=0.001)
    return Delivery(sink, router=None, settings=settings, metrics=Metrics(),
                    clock=time.clock, sleep=time.sleep)


async def test_60_messages_at_20_a_minute_take_two_fake_minutes() -> None:
    time = FakeTime()
    sink = TimedSink("bot", time)
    payloads = [str(i).encode() for i in range(60)]
    dead, completed = await delivery(sink, time, 20).send(payloads, rows(60))
    assert completed and not dead
    assert sink.received == payloads  # in order, each once
    assert time.now == 120.0  # 20 now, 20 a minute later, 20 two minutes later
    assert sink.at[19] == 0.0 and sink.at[20] == 60.0 and sink.at[40] == 120.0
    assert most_in_any_minute(sink.at) == 20


async def test_retries_take_tokens_too() -> None:
    time = FakeTime()

    def third_refused(payloads: Any) -> list[ItemFailure]:
        return [ItemFailure(2, RetriableSinkError("45009 rate limited"))]

    sink = TimedSink("bot", time, [third_refused])
    payloads = [str(i).encode() for i in range(10)]
    dead, completed = await delivery(sink, time, 5).send(payloads, rows(10))
    assert completed and not dead
    assert sorted(sink.received) == sorted(payloads)
    assert most_in_any_minute(sink.at) <= 5
    assert time.now == 120.0  # 11 requests at 5 a minute: the 11th in the third minute


async def test_a_stop_while_waiting_for_a_token_leaves_the_rest_unsent() -> None:
    sink = MemorySink("bot")
    stopping = asyncio.Event()
    settings = DeliverySettings(rate_per_minute=1)
    waiting = Delivery(sink, router=None, settings=settings, metrics=Metrics(),
                       stopping=stopping)
    task = asyncio.create_task(waiting.send([b"a", b"b"], rows(2)))
    await wait_until(lambda: bool(sink.received), what="the first payload")
    stopping.set()
    dead, completed = await asyncio.wait_for(task, 5)
    # Not completed: the worker does not ack, so "b" is still in the spool for next time.
    assert not completed and not dead and sink.received == [b"a"]


async def test_tokens_come_back_a_minute_after_they_were_spent() -> None:
    time = FakeTime()
    bucket = TokenBucket(6, clock=time.clock, sleep=time.sleep)
    assert await bucket.take(4) == 4
    time.now = 30.0
    assert await bucket.take(10) == 2
    assert bucket.available() == 0
    time.now = 59.9
    assert bucket.available() == 0  # not a continuous refill: that would allow 6 + 5 here
    time.now = 60.0
    assert bucket.available() == 4
    assert await bucket.take(5) == 4
    assert await bucket.take(1) == 1 and time.sleeps == [30.0]  # waited for the 30 s pair
    assert await bucket.take(0) == 0
    with pytest.raises(ValueError):
        TokenBucket(0, sleep=time.sleep)
