"""Structured metadata on re-stamped Loki entries (`structuredMetadata`): what a re-stamped
entry carries, that a server refusing it costs no event under `auto`, that `off` never sends
it and `on` never falls back; and that the fake validates the third element as Loki does."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import ValidationError

from eventpipe.metrics import Metrics
from eventpipe.sinks.loki.encode import LokiEntry
from eventpipe.sinks.loki.request import build_body, plan_chunks
from eventpipe.sinks.loki.restamp import parse_rfc3339_ns, rfc3339_ns
from eventpipe.sinks.loki.sink import LokiSink
from tests.fakes.loki import FakeLoki
from tests.test_sink_loki import config, deliver, event, stored_rows

REFUSAL_LOG = "loki refuses structured metadata"


def metadata_gauge(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("eventpipe_sink_loki_structured_metadata",
                                             {"receiver": "loki"})


def ago(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))


def by_name(loki: FakeLoki) -> dict[str, dict[str, str]]:
    """Stored structured metadata by the event's name (entries without any left out)."""
    out: dict[str, dict[str, str]] = {}
    for labels, ts, line in loki.entries():
        metadata = loki.metadata.get((tuple(sorted(labels.items())), ts))
        if metadata is not None:
            out[orjson.loads(line)["involvedObject"]["name"]] = metadata
    return out


async def newest_then_old(sink: LokiSink, *, fresh: int = 0) -> list[tuple[int, str]]:
    """Send one entry of now, then one two hours older (re-stamped: outside the 1 h window)
    with `fresh` entries of now in the same batch; returns the dead letters of both."""
    dead, _ = await deliver(sink, [event("new", rv="200", lastTimestamp=ago(0))])
    batch = [event("old", rv="100", lastTimestamp=ago(7200))]
    batch += [event(f"fresh-{i}", rv=str(300 + i), lastTimestamp=ago(0)) for i in range(fresh)]
    more, _ = await deliver(sink, batch)
    return dead + more


# --- what a re-stamped entry carries -----------------------------------------------------------

async def test_restamped_entry_carries_the_event_time_and_the_reason() -> None:
    """Only the re-stamped entry has metadata: its own time to the nanosecond (the ms of
    lastTimestamp, then the resourceVersion offset) and why; one gzip request per batch."""
    async with FakeLoki() as loki:
        sink = LokiSink(name="loki", config=config(loki.url))
        old_time = ago(7200)
        await deliver(sink, [event("new", rv="200", lastTimestamp=ago(0))])
        dead, _ = await deliver(sink, [event("old", rv="100", lastTimestamp=old_time),
                                       event("ok", rv="300", lastTimestamp=ago(1800))])
    assert dead == [] and loki.stored == 3 and not loki.rejected
    assert by_name(loki) == {"old": {"event_time": old_time[:-1] + ".000000100Z",
                                     "restamp_reason": "window"}}
    assert loki.statuses == [204, 204] and loki.gzipped == 2


async def test_entry_loki_refuses_carries_reason_refused() -> None:
    """A new process does not know the stream's newest entry: Loki refuses the old one, the
    sink re-sends it stamped now, with the time it had."""
    async with FakeLoki() as loki:
        first = LokiSink(name="loki", config=config(loki.url))
        await deliver(first, [event("new", rv="200", lastTimestamp=ago(0))])
        restarted = LokiSink(name="loki", config=config(loki.url))
        old_time = ago(7200)
        dead, _ = await deliver(restarted, [event("old", rv="7", lastTimestamp=old_time)])
    assert dead == [] and loki.statuses == [204, 400, 204]
    assert by_name(loki) == {"old": {"event_time": old_time[:-1] + ".000000007Z",
                                     "restamp_reason": "refused"}}


def test_event_time_is_rfc3339_with_nanoseconds_and_reads_back() -> None:
    ns = 1_795_428_000_123_000_456
    assert rfc3339_ns(ns) == "2026-11-23T10:00:00.123000456Z"
    assert parse_rfc3339_ns(rfc3339_ns(ns)) == ns


def test_bodies_with_metadata_stay_within_max_request_bytes() -> None:
    meta = orjson.dumps({"event_time": rfc3339_ns(1), "restamp_reason": "window"})
    entries = [LokiEntry(b'{"a":"b"}', str(10**18 + i).encode(), orjson.dumps("x" * 300),
                         meta if i % 2 else b"") for i in range(200)]
    chunks = plan_chunks(entries, 4096)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(200))
    for chunk in chunks:
        body = build_body(entries, chunk)
        assert len(body) <= 4096
        values = [v for s in orjson.loads(body)["streams"] for v in s["values"]]
        assert sum(len(v) == 3 for v in values) == sum(i % 2 for i in chunk)
        assert all(v[2] == orjson.loads(meta) for v in values if len(v) == 3)
        without = orjson.loads(build_body(entries, chunk, metadata=False))
        assert all(len(v) == 2 for s in without["streams"] for v in s["values"])


# --- a server that refuses it ------------------------------------------------------------------

async def test_auto_falls_back_once_without_losing_or_dead_lettering(
        caplog: pytest.LogCaptureFixture) -> None:
    """Loki with allow_structured_metadata off refuses the re-stamped entry and stores the
    rest of the push: the sink logs once, re-sends that request without metadata (the stored
    entries are exact duplicates Loki drops) and sends none from then on."""
    metrics = Metrics()
    async with FakeLoki(structured_metadata=False) as loki:
        sink = LokiSink(name="loki", config=config(loki.url))
        sink.bind_metrics(metrics)
        assert metadata_gauge(metrics) == 1.0
        with caplog.at_level(logging.WARNING, logger="eventpipe.sinks.loki"):
            dead = await newest_then_old(sink, fresh=5)
            assert metadata_gauge(metrics) == 0.0
            assert dead == [] and loki.stored == 7 and loki.duplicates == 5
            assert loki.statuses == [204, 400, 204]
            received = loki.metadata_received
            more, _ = await deliver(sink, [event("older", rv="50", lastTimestamp=ago(9000))])
    assert more == [] and loki.stored == 8 and loki.statuses[3:] == [204]
    assert loki.metadata_received == received == 1 and loki.metadata == {}
    assert sum(REFUSAL_LOG in r.getMessage() for r in caplog.records) == 1


async def test_requests_in_flight_when_it_is_refused_are_resent_too(
        caplog: pytest.LogCaptureFixture) -> None:
    """Two pushes built with metadata before either answer came back: both are re-sent
    without it, neither entry is dead-lettered, and the log says it once."""
    async with FakeLoki(structured_metadata=False) as loki:
        sink = LokiSink(name="loki", config=config(loki.url))
        await deliver(sink, [event("new", rv="200", lastTimestamp=ago(0))])
        old = [event(f"old-{i}", rv=str(100 + i), lastTimestamp=ago(7200)) for i in range(2)]
        entries = [sink.encode_row(row, e) for row, e in zip(stored_rows(old), old, strict=True)]
        assert all(entry.metadata for entry in entries)
        await sink.start()
        try:
            with caplog.at_level(logging.WARNING, logger="eventpipe.sinks.loki"):
                answers = await asyncio.gather(*(sink.send([entry]) for entry in entries))
        finally:
            await sink.close()
    assert list(answers) == [[], []] and loki.stored == 3 and loki.metadata == {}
    assert sum(REFUSAL_LOG in r.getMessage() for r in caplog.records) == 1


async def test_on_never_falls_back() -> None:
    """`on`: the user said the server takes it; a refusal is Loki's 400 for that entry, a dead
    letter carrying Loki's message, and the metadata is still sent next time."""
    async with FakeLoki(structured_metadata=False) as loki:
        sink = LokiSink(name="loki", config=config(loki.url, structuredMetadata="on"))
        dead = await newest_then_old(sink)
        assert len(dead) == 1
        assert "structured metadata, but this feature is disallowed" in dead[0][1]
        await deliver(sink, [event("older", rv="50", lastTimestamp=ago(9000))])
    assert loki.metadata_received == 2 and loki.stored == 1


@pytest.mark.parametrize("value", ["off", False])  # a bare YAML `off` is a boolean
async def test_off_never_sends_it(value: Any) -> None:
    async with FakeLoki() as loki:
        sink = LokiSink(name="loki", config=config(loki.url, structuredMetadata=value))
        dead = await newest_then_old(sink, fresh=2)
    assert dead == [] and loki.stored == 4 and loki.metadata_received == 0


def test_config_values() -> None:
    assert config().structured_metadata == "auto"
    assert config(structuredMetadata=True).structured_metadata == "on"
    with pytest.raises(ValidationError, match="structuredMetadata"):
        config(structuredMetadata="sometimes")


# --- the fake validates the third element as Loki does ----------------------------------------

@pytest.mark.parametrize(("value", "status"), [
    (["1", "line", {"k": "v"}], 204),
    (["1", "line", {"k": 1}], 400),  # values must be strings
    (["1", "line", "k=v"], 400),  # an object
    (["1", "line", {}, {}], 400),  # at most three elements
])
async def test_fake_parses_the_third_element_like_loki(value: list[Any], status: int) -> None:
    async with FakeLoki() as loki, aiohttp.ClientSession() as http:
        body = orjson.dumps({"streams": [{"stream": {"a": "b"}, "values": [value]}]})
        async with http.post(loki.url, data=body,
                             headers={"Content-Type": "application/json"}) as answer:
            assert answer.status == status, await answer.text()
    assert loki.stored == (1 if status == 204 else 0)


async def test_fake_with_metadata_disallowed_still_takes_an_empty_object() -> None:
    async with FakeLoki(structured_metadata=False) as loki, aiohttp.ClientSession() as http:
        body = orjson.dumps({"streams": [{"stream": {"a": "b"}, "values": [
            ["1", "empty", {}], ["2", "full", {"k": "v"}]]}]})
        async with http.post(loki.url, data=body,
                             headers={"Content-Type": "application/json"}) as answer:
            assert answer.status == 400
            assert "includes structured metadata, but this feature is disallowed" in (
                await answer.text())
    assert loki.lines() == ["empty"]
