"""Unit tests of every public Spool method, with corpus events and a fake clock."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventpipe.spool import Spool, SpoolFullError, SpoolSchemaError, schema, writing
from eventpipe.spool.counting import OccurrenceBook
from eventpipe.spool.records import S_COUNT_DELTA, S_OBSERVED_AT, S_SEQ, NewRecord
from tests.test_spool_support import corpus_records, synthetic


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def version(rec: NewRecord, rv: str, occurrences: int) -> NewRecord:
    """Another version of the same Event (same uid) with a new rv and count."""
    return (rec[0], rv, *rec[2:7], occurrences, *rec[8:])


@pytest.fixture(scope="module")
def corpus() -> list[NewRecord]:
    return corpus_records()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def spool(tmp_path: Path, clock: Clock) -> AsyncIterator[Spool]:
    s = await Spool.open(tmp_path / "spool.db", clock=clock, history_window=100.0)
    yield s
    await s.close()


async def test_append_stores_rows_as_given(spool: Spool, corpus: list[NewRecord]) -> None:
    batch = corpus[:300]
    assert await spool.append(batch, stream="all", resource_version="900") == list(range(300))
    rows = await spool.read_after(0, 1000)
    assert [r[S_SEQ] for r in rows] == list(range(1, 301))
    for rec, row in zip(batch, rows, strict=True):
        assert (row[1], row[2], row[4], *row[5:11], row[12]) == (
            rec[0],
            rec[1],
            rec[8],
            *rec[2:8],
            rec[9],
        )
    assert await spool.head_seq() == 300
    assert await spool.resume_point("all") == "900"


async def test_append_keeps_order_and_exact_values_of_a_large_odd_batch(
    spool: Spool, corpus: list[NewRecord]
) -> None:
    # The append passes columns as one JSON array and bodies as one BLOB (eventpipe.spool.
    # schema): every value must come back exactly, in record order, for a whole burst.
    odd: list[NewRecord] = [
        ("uid-é-\"q\"-\\", "7", "", "Kind\u0000x", "name\nline", "Reason 🚀", "Warning",
         2**62, None, b'{"message":"\xc3\xa9 \\u0000 \\"q\\""}'),
        ("uid-2", "8", "ns", "Pod", "p", "", "", 1, 1_700_000_000.123456, b"{}"),
        ("uid-3", "9", "ns", "Pod", "p", "r", "t", 3, 5e-324, b"x" * 70_000),
    ]
    unique = {(r[1], r[0]): r for r in corpus}  # the corpus repeats a few versions
    batch = odd + list(unique.values())
    assert await spool.append(batch, stream="all", resource_version="42") == list(
        range(len(batch)))
    rows = await spool.read_after(0, len(batch) + 1)
    assert [r[S_SEQ] for r in rows] == list(range(1, len(batch) + 1))
    for rec, row in zip(batch, rows, strict=True):
        assert (row[1], row[2], *row[5:11], row[4], row[12]) == (*rec[:8], rec[8], rec[9])
        assert type(row[12]) is bytes and type(row[10]) is int
    assert await spool.resume_point("all") == "42"


async def test_text_with_nul_on_the_lookup_path(spool: Spool, corpus: list[NewRecord]) -> None:
    # A repeated version sends the batch down the lookup path, inside its own transaction.
    nul: NewRecord = ("u\u0000id", "5", "n", "K", "n\u0000m", "r", "t", 1, None, b"{}")
    assert await spool.append([nul, nul, corpus[0]], stream="s", resource_version="6") == [0, 2]
    rows = await spool.read_after(0, 10)
    assert [(r[1], r[7]) for r in rows] == [("u\u0000id", "n\u0000m"), (corpus[0][0], corpus[0][4])]
    assert await spool.resume_point("s") == "6"


async def test_a_failed_append_statement_stores_nothing(
    spool: Spool, corpus: list[NewRecord]
) -> None:
    # The watch path's append is one statement without BEGIN/COMMIT: a duplicate in it must
    # leave neither rows nor a moved resume point behind (the spool then retries the batch
    # with the lookup).
    await spool.append(corpus[:2], stream="s", resource_version="1")
    book = OccurrenceBook(now=0.0)
    with pytest.raises(sqlite3.IntegrityError):
        await writing.insert_batch(spool._writer, [corpus[5], corpus[0]], stream="s",
                                   resource_version="2", book=book, observed_at=1.0,
                                   check_stored=False)
    assert await spool.head_seq() == 2
    assert await spool.resume_point("s") == "1"
    assert await spool.append([corpus[5], corpus[0]], stream="s", resource_version="2") == [0]
    assert await spool.resume_point("s") == "2"


async def test_append_skips_stored_pairs_and_in_batch_duplicates(
    spool: Spool, corpus: list[NewRecord]
) -> None:
    a, b, c = corpus[:3]
    assert await spool.append([a, b], stream="s", resource_version="1") == [0, 1]
    assert await spool.append([b, c, c, a], stream="s", resource_version="2") == [1]
    assert await spool.head_seq() == 3
    assert await spool.resume_point("s") == "2"  # saved even when nothing new was stored


async def test_count_delta_follows_occurrences(spool: Spool, corpus: list[NewRecord]) -> None:
    e = corpus[0]
    versions = [version(e, "a1", 3), version(e, "a2", 7), version(e, "a3", 7), version(e, "a4", 2)]
    await spool.append(versions[:2], stream="s", resource_version=None)
    await spool.append(versions[2:], stream="s", resource_version=None)
    rows = await spool.read_after(0, 10)
    assert [r[S_COUNT_DELTA] for r in rows] == [3, 4, 0, 2]
    await spool.forget(e[0])
    await spool.append([version(e, "a5", 9)], stream="s", resource_version=None)
    assert (await spool.read_after(4, 10))[0][S_COUNT_DELTA] == 9
    assert await spool.resume_point("s") is None


async def test_count_delta_survives_reopen(tmp_path: Path, corpus: list[NewRecord]) -> None:
    clock = Clock()
    e = corpus[0]
    s = await Spool.open(tmp_path / "x.db", clock=clock)
    await s.append([version(e, "1", 5)], stream="s", resource_version="1")
    await s.close()
    clock.now += 3 * 3600  # a long downtime: the window is anchored at the newest row
    s = await Spool.open(tmp_path / "x.db", clock=clock)
    await s.append([version(e, "2", 8)], stream="s", resource_version="2")
    assert (await s.read_after(1, 1))[0][S_COUNT_DELTA] == 3
    await s.close()


async def test_observed_at_is_now_and_never_decreases(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:1], stream="s", resource_version=None)
    clock.now -= 50  # the wall clock stepped back
    await spool.append(corpus[1:2], stream="s", resource_version=None)
    rows = await spool.read_after(0, 10)
    assert [r[S_OBSERVED_AT] for r in rows] == [1_000_000.0, 1_000_000.0]


async def test_clear_resume_point(spool: Spool, corpus: list[NewRecord]) -> None:
    await spool.append(corpus[:1], stream="ns-a", resource_version="5")
    await spool.append(corpus[1:2], stream="ns-b", resource_version="6")
    await spool.clear_resume_point("ns-a")
    assert await spool.resume_point("ns-a") is None
    assert await spool.resume_point("ns-b") == "6"


async def test_read_after_pages(spool: Spool, corpus: list[NewRecord]) -> None:
    await spool.append(corpus[:50], stream="s", resource_version=None)
    assert [r[S_SEQ] for r in await spool.read_after(10, 5)] == [11, 12, 13, 14, 15]
    assert await spool.read_after(50, 5) == []


async def test_read_since_by_time_and_seq(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    for i in range(5):
        clock.now = 1000.0 * (i + 1) + 1_000_000
        await spool.append(corpus[i * 10 : i * 10 + 10], stream="s", resource_version=None)
    rows = await spool.read_since(since=1_003_000.0, limit=100)
    assert [r[S_SEQ] for r in rows] == list(range(21, 51))
    rows = await spool.read_since(since=1_003_000.0, after_seq=40, limit=3)
    assert [r[S_SEQ] for r in rows] == [41, 42, 43]
    rows = await spool.read_since(from_seq=45, limit=100)
    assert [r[S_SEQ] for r in rows] == list(range(45, 51))
    assert await spool.read_since(since=2_000_000.0, limit=10) == []


async def test_read_seqs(spool: Spool, corpus: list[NewRecord]) -> None:
    await spool.append(corpus[:20], stream="s", resource_version=None)
    rows = await spool.read_seqs([7, 3, 3, 99, 12])
    assert [r[S_SEQ] for r in rows] == [3, 7, 12]
    many = list(range(1, 1500))
    assert len(await spool.read_seqs(many)) == 20


async def test_cursor_and_ack_with_dead_letters(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:10], stream="s", resource_version=None)
    assert await spool.cursor("loki") == 0
    await spool.ack("loki", 5, dead=[(2, "400 bad labels")])
    clock.now += 10
    await spool.ack("loki", 10, dead=[(2, "400 still bad"), (9, "413 too large")])
    await spool.ack("kafka", 3)
    assert await spool.cursor("loki") == 10
    assert await spool.cursor("kafka") == 3
    assert await spool.dead_letters("loki") == [
        ("loki", 2, "400 still bad", 2, 1_000_000.0, 1_000_010.0),
        ("loki", 9, "413 too large", 1, 1_000_010.0, 1_000_010.0),
    ]
    assert await spool.dead_letters("kafka") == []
    await spool.resolve_dead_letters("loki", [2])
    assert [d[1] for d in await spool.dead_letters()] == [9]
    await spool.record_dead_letters("kafka", [(1, "replay: 400")])  # replay: cursor untouched
    assert await spool.cursor("kafka") == 3
    assert await spool.dead_letters("kafka") == [
        ("kafka", 1, "replay: 400", 1, 1_000_010.0, 1_000_010.0)
    ]


async def test_retention_needs_every_ack_and_age(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:10], stream="s", resource_version=None)  # seq 1..10 at t0
    clock.now += 200
    await spool.append(corpus[10:20], stream="s", resource_version=None)  # 11..20 at t0+200
    await spool.ack("a", 20, dead=[(3, "rejected")])
    await spool.ack("b", 6)
    await spool.ack("gone", 0)  # not configured any more: ignored
    assert await spool.retention(["a", "b", "never-seen"]) == 0  # never-seen still wants all
    assert await spool.retention(["a", "b"]) == 5  # 1..6 acked by both, old; 3 is dead-lettered
    assert [r[S_SEQ] for r in await spool.read_after(0, 3)] == [3, 7, 8]
    await spool.ack("b", 20)
    assert await spool.retention(["a", "b"]) == 4  # 7..10; 11..20 are inside the window
    assert await spool.retention(["a", "b"], now=clock.now + 101) == 10
    await spool.resolve_dead_letters("a", [3])
    assert await spool.retention(["a", "b"]) == 1
    assert await spool.head_seq() == 0
    # seqs are never reused after deletes
    await spool.append(corpus[20:21], stream="s", resource_version=None)
    assert await spool.head_seq() == 21


async def test_retention_without_receivers_keeps_only_history(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:10], stream="s", resource_version=None)
    clock.now += 50
    assert await spool.retention([]) == 0
    clock.now += 51
    assert await spool.retention([]) == 10


async def test_stats(spool: Spool, clock: Clock, corpus: list[NewRecord]) -> None:
    await spool.append(corpus[:10], stream="s", resource_version=None)
    clock.now += 30
    await spool.ack("a", 4, dead=[(2, "x")])
    st = await spool.stats(["a", "b"])
    assert st["events"] == 10
    assert st["head_seq"] == 10
    assert isinstance(st["bytes"], int) and st["bytes"] > 0
    assert st["oldest_observed_at"] == st["newest_observed_at"] == 1_000_000.0
    times = [r[8] for r in corpus[:10] if r[8] is not None]
    assert st["oldest_event_time"] == min(times)
    assert st["newest_event_time"] == max(times)
    assert st["receivers"] == {
        "a": {"acked_seq": 4, "lag_events": 6, "lag_seconds": 30.0, "dead_letters": 1},
        "b": {"acked_seq": 0, "lag_events": 10, "lag_seconds": 30.0, "dead_letters": 0},
    }
    st = await spool.stats()
    assert list(st["receivers"]) == ["a"]  # type: ignore[call-overload]


async def test_budget_block_raises_and_stores_nothing(
    tmp_path: Path, corpus: list[NewRecord]
) -> None:
    s = await Spool.open(tmp_path / "b.db", max_bytes=1_000_000, when_full="block")
    stored = 0
    with pytest.raises(SpoolFullError):
        for i in range(0, 5000, 100):
            part = synthetic(corpus, 100, offset=i)
            await s.append(part, stream="s", resource_version=str(i))
            stored += 100
    assert await s.head_seq() == stored
    assert await s.resume_point("s") == str(stored - 100)
    await s.ack("r", stored)
    await s.close()
    s = await Spool.open(
        tmp_path / "b.db", max_bytes=1_000_000, when_full="block", history_window=0
    )
    assert await s.retention(["r"], now=2e10) == stored
    await s.append(synthetic(corpus, 100, offset=10**6), stream="s", resource_version="x")
    await s.close()


async def test_budget_drop_oldest_reports_every_drop(
    tmp_path: Path, corpus: list[NewRecord]
) -> None:
    drops: list[tuple[int, str]] = []
    s = await Spool.open(
        tmp_path / "d.db",
        max_bytes=1_000_000,
        when_full="dropOldest",
        on_drop=lambda n, why: drops.append((n, why)),
    )
    total = 3000
    for i in range(0, total, 100):
        await s.append(synthetic(corpus, 100, offset=i), stream="s", resource_version=str(i))
    st = await s.stats()
    assert drops and {why for _, why in drops} == {"budget"}
    assert st["events"] == total - sum(n for n, _ in drops)
    first = (await s.read_after(0, 1))[0][S_SEQ]
    assert first == sum(n for n, _ in drops) + 1  # the oldest went, in order
    assert isinstance(st["bytes"], int) and st["bytes"] <= 1_000_000
    await s.close()


async def test_a_batch_bigger_than_the_budget_is_refused(
    tmp_path: Path, corpus: list[NewRecord]
) -> None:
    s = await Spool.open(tmp_path / "e.db", max_bytes=300_000, when_full="dropOldest")
    with pytest.raises(SpoolFullError):
        await s.append(synthetic(corpus, 2000), stream="s", resource_version="1")
    assert await s.head_seq() == 0
    await s.close()


async def test_second_process_view_and_schema_check(
    spool: Spool, tmp_path: Path, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:5], stream="s", resource_version="7")
    other = await Spool.open(tmp_path / "spool.db")  # e.g. `eventpipe spool stats`
    assert await other.head_seq() == 5
    assert await other.resume_point("s") == "7"
    await spool.append(corpus[5:6], stream="s", resource_version="8")
    assert await other.head_seq() == 6
    await other.close()
    db = sqlite3.connect(tmp_path / "spool.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(SpoolSchemaError):
        await Spool.open(tmp_path / "spool.db")


async def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await Spool.open(tmp_path / "x.db", when_full="panic")
    with pytest.raises(ValueError):
        await Spool.open(tmp_path / "x.db", synchronous="SOMETIMES")


async def test_sqlite_without_json_functions_is_named_at_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite before 3.38 may be built without them; the append needs them, so say so at once.
    monkeypatch.setattr(schema, "_JSON_PROBE", "SELECT json_no_such_function('[1]')")
    with pytest.raises(SpoolSchemaError, match="lacks the JSON functions"):
        await Spool.open(tmp_path / "spool.db")
