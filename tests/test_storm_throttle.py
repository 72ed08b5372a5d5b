"""Throttle windows in the sink driver, against a real spool and fake time: a 300-version
BackOff storm gives two messages, other keys pass, a restart mid-window still sends the summary
once, and a restart after it does not send it again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventpipe.delivery.driver import Delivery, DeliverySettings, NewData, SinkWorker
from eventpipe.delivery.throttle import Throttle, format_duration, summary_note
from eventpipe.metrics import Metrics
from eventpipe.spool import Spool
from eventpipe.spool.rows import StoredRow
from eventpipe.watch.normalize import to_record
from tests.pipeline_harness import wait_until
from tests.test_driver import EveryoneRouter, MemorySink

WINDOW = 300.0


class FakeClock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def version(name: str, count: int, *, reason: str = "BackOff", uid: str | None = None) -> Any:
    obj = {"metadata": {"uid": uid or f"uid-{name}-{reason}", "namespace": "ns",
                        "resourceVersion": f"{name}-{reason}-{count}"},
           "involvedObject": {"kind": "Pod", "name": name, "namespace": "ns"},
           "reason": reason, "type": "Warning", "count": count,
           "message": f"Back-off restarting failed container ({count})"}
    return to_record(obj, orjson.dumps(obj))


class Harness:
    """A spool and one throttled worker on receiver `a`, both on the fake clock."""

    def __init__(self, spool: Spool, clock: FakeClock, metrics: Metrics) -> None:
        self.spool, self.clock, self.metrics = spool, clock, metrics
        self.new_data = NewData()
        self.worker: SinkWorker | None = None

    async def append(self, *records: Any, step: float = 0.0) -> None:
        for record in records:
            await self.spool.append([record], stream="s", resource_version=None)
            self.clock.now += step
        self.new_data.notify()

    async def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.new_data.notify()


@contextlib.asynccontextmanager
async def throttled(path: Path, clock: FakeClock, sink: MemorySink, *, metrics: Metrics | None
                    = None) -> AsyncIterator[Harness]:
    """Open the spool and run a worker with a 5-minute throttle; stop both on exit."""
    async with contextlib.AsyncExitStack() as stack:
        spool = await Spool.open(path, clock=clock)
        stack.push_async_callback(spool.close)  # also if building the worker fails
        harness = Harness(spool, clock, metrics or Metrics())
        settings = DeliverySettings(initial_backoff=0.01, max_backoff=0.02,
                                    throttle_window=WINDOW)
        stopping = asyncio.Event()
        delivery = Delivery(sink, router=EveryoneRouter(), settings=settings,
                            metrics=harness.metrics, stopping=stopping)
        harness.worker = SinkWorker(delivery, spool=spool, new_data=harness.new_data,
                                    settings=settings, metrics=harness.metrics,
                                    stopping=stopping, clock=clock)
        task = asyncio.create_task(harness.worker.run())
        try:
            yield harness
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)


def sent(sink: MemorySink) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in sink.received]


async def acked(harness: Harness) -> None:
    head = await harness.spool.head_seq()
    await wait_until(lambda: harness.worker is not None and harness.worker.acked_seq == head,
                     what=f"cursor at {head}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_a_300_version_storm_gives_one_message_and_one_summary(
        tmp_path: Path, clock: FakeClock) -> None:
    sink = MemorySink("a")
    metrics = Metrics()
    async with throttled(tmp_path / "spool.db", clock, sink, metrics=metrics) as h:
        await h.append(*(version("web-1", c) for c in range(1, 301)), step=0.9)  # 270 s
        await acked(h)
        assert [e["count"] for e in sent(sink)] == [1]
        await h.advance(WINDOW)
        await wait_until(lambda: len(sink.received) == 2, what="the summary")
        await h.advance(3 * WINDOW)
        # A later event of another pod goes through, and nothing else came meanwhile.
        await h.append(version("web-2", 1))
        await wait_until(lambda: len(sink.received) == 3, what="the next pod's event")
    first, summary, other = sent(sink)
    assert "throttle" not in first and summary["count"] == 300
    assert summary["throttle"] == {"suppressed": 299, "versions": 299, "window": "5m",
                                   "windowSeconds": WINDOW}
    assert summary_note(summary) == "…and 299 more occurrences in the last 5m"
    assert other["involvedObject"]["name"] == "web-2"
    assert metrics.sink_throttled.labels("a")._value.get() == 299


async def test_other_pods_and_reasons_are_not_held_back_by_a_storm(
        tmp_path: Path, clock: FakeClock) -> None:
    sink = MemorySink("a")
    async with throttled(tmp_path / "spool.db", clock, sink) as h:
        storm = [version("web-1", c) for c in range(1, 51)]
        others = [version("web-2", 1), version("web-1", 1, reason="Unhealthy"),
                  version("web-3", 1, reason="Unhealthy")]
        await h.append(*storm[:10], *others, *storm[10:], step=1.0)
        await acked(h)
        assert [(e["involvedObject"]["name"], e["reason"]) for e in sent(sink)] == [
            ("web-1", "BackOff"), ("web-2", "BackOff"), ("web-1", "Unhealthy"),
            ("web-3", "Unhealthy")]
        await h.advance(WINDOW)
        await wait_until(lambda: len(sink.received) == 5, what="one summary")
    assert sent(sink)[-1]["throttle"]["suppressed"] == 49


async def test_a_storm_longer_than_the_window_summarises_each_window(
        tmp_path: Path, clock: FakeClock) -> None:
    sink = MemorySink("a")
    async with throttled(tmp_path / "spool.db", clock, sink) as h:
        # 100 versions 6 s apart: 600 s, two windows; each is a message and a summary.
        await h.append(*(version("web-1", c) for c in range(1, 101)), step=6.0)
        await acked(h)
        await h.advance(WINDOW)
        await wait_until(lambda: len(sink.received) == 4, what="two windows")
    counts = [(e["count"], e.get("throttle", {}).get("suppressed")) for e in sent(sink)]
    assert counts == [(1, None), (50, 49), (51, None), (100, 49)]


async def test_restart_mid_window_still_sends_the_summary_once(
        tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "spool.db"
    before, after = MemorySink("a"), MemorySink("a")
    async with throttled(path, clock, before) as h:
        await h.append(*(version("web-1", c) for c in range(1, 101)), step=1.0)
        await acked(h)
    assert len(before.received) == 1
    async with throttled(path, clock, after) as h:  # the restarted process
        assert h.worker is not None
        await wait_until(lambda: h.worker is not None and h.worker.throttle is not None
                         and len(h.worker.throttle) == 1, what="the window restored")
        await h.append(*(version("web-1", c) for c in range(101, 151)), step=1.0)
        await acked(h)
        assert after.received == []
        await h.advance(WINDOW)
        await wait_until(lambda: len(after.received) == 1, what="the summary")
        await h.append(version("web-9", 1))
        await wait_until(lambda: len(after.received) == 2, what="a later event")
    assert sent(after)[0]["throttle"]["suppressed"] == 149
    assert sent(after)[0]["count"] == 150


async def test_restart_after_the_summary_does_not_send_it_again(
        tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "spool.db"
    before, after = MemorySink("a"), MemorySink("a")
    async with throttled(path, clock, before) as h:
        await h.append(*(version("web-1", c) for c in range(1, 11)), step=1.0)
        await acked(h)
        await h.advance(WINDOW)
        await wait_until(lambda: len(before.received) == 2, what="the summary")
        await h.append(version("web-2", 1))  # acked after the window's end
        await acked(h)
    async with throttled(path, clock, after) as h:
        await h.append(version("web-3", 1))
        await wait_until(lambda: len(after.received) == 1, what="the new event")
        assert h.worker is not None and h.worker.throttle is not None
        assert len(h.worker.throttle) == 2  # web-2 and web-3 open; web-1 was summarised
    assert sent(after)[0]["involvedObject"]["name"] == "web-3"


def row(seq: int, observed: float, name: str = "p", delta: int = 1) -> StoredRow:
    return StoredRow(seq, f"u{seq}", str(seq), observed, None, "ns", "Pod", name, "BackOff",
                     "Warning", seq, delta, b"{}")


def test_windows_close_in_order_and_batches_stop_at_a_window_end() -> None:
    throttle = Throttle(window=10.0, key=["cluster", "namespace", "kind", "name", "reason"])
    assert throttle.admit(row(1, 0.0, "a")) and throttle.admit(row(2, 4.0, "b"))
    assert not throttle.admit(row(3, 9.0, "a"))
    assert throttle.next_end() == 10.0
    rows = [row(4, 9.5, "x"), row(5, 10.0, "x"), row(6, 11.0, "x")]
    assert throttle.before_next_end(rows) == rows[:1]
    (closed,) = throttle.due(15.0)  # "b" ended too but held nothing back
    assert (closed.versions, closed.occurrences, closed.last) == (1, 1, row(3, 9.0, "a"))
    assert len(throttle) == 0 and throttle.next_end() is None


def test_format_duration() -> None:
    assert [format_duration(s) for s in (300, 5400, 45.5, 86400 + 61, 0.25)] == [
        "5m", "1h30m", "45.5s", "1d1m1s", "0.25s"]


def summary_of(*counts: int) -> dict[str, Any]:
    throttle = Throttle(window=WINDOW, key=["name", "reason"])
    records = [version("web-1", c) for c in counts]
    for seq, record in enumerate(records, start=1):
        throttle.admit(StoredRow(seq=seq, observed_at=float(seq), count_delta=1,
                                 **record._replace(event_time=None)._asdict()))
    (window,) = throttle.due(1e12)
    return throttle.summary(window)


def test_templates_and_default_texts_see_the_summary() -> None:
    from eventpipe.sinks.im.message import markdown_text, plain_text
    from eventpipe.sinks.wecom.config import WecomSinkConfig
    from eventpipe.sinks.wecom.sink import WecomSink

    summary = summary_of(1, 2, 3)
    assert summary["throttle"]["suppressed"] == 2
    assert "\n…and 2 more occurrences in the last 5m\nMessage: " in plain_text(summary, "c")
    assert "\n\n…and 2 more occurrences in the last 5m\n\n> " in markdown_text(summary, "c")
    template = "{{ .Reason }}{{ with .Throttle }} +{{ .Suppressed }} in {{ .Window }}{{ end }}"
    sink = WecomSink(name="bot", cfg=WecomSinkConfig(webhook="http://x/?key=k",
                                                     template=template))
    event = orjson.loads(sink.encode(summary, b""))
    assert event["text"]["content"] == "BackOff +2 in 5m"
    plain = orjson.loads(sink.encode(orjson.loads(version("web-1", 1)[9]), b""))
    assert plain["text"]["content"] == "BackOff"
