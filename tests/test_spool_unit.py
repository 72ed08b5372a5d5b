"""Unit tests of every public Spool method, with corpus events and a fake clock."""

from __future__ import annotations

import json
import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from eventpipe.spool import Spool, SpoolFullError, SpoolSchemaError, rows, schema, writing
from eventpipe.spool.counting import OccurrenceBook
from eventpipe.spool.rows import NewRecord, StoredRow
from tests.conftest import OpenSpool
from tests.test_spool_support import corpus_records, synthetic


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def version(rec: NewRecord, rv: str, occurrences: int) -> NewRecord:
    """Another version of the same Event (same uid) with a new rv and count."""
    return rec._replace(resource_version=rv, occurrences=occurrences)


def as_record(row: StoredRow) -> NewRecord:
    """The part of a stored row that the record supplied."""
    return NewRecord(**{name: getattr(row, name) for name in NewRecord._fields})


@pytest.fixture(scope="module")
def corpus() -> list[NewRecord]:
    return corpus_records()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def spool(open_spool: OpenSpool, clock: Clock) -> Spool:
    return await open_spool(clock=clock, history_window=100.0)


async def test_append_stores_rows_as_given(spool: Spool, corpus: list[NewRecord]) -> None:
    batch = corpus[:300]
    assert await spool.append(batch, stream="all", resource_version="900") == list(range(300))
    rows = await spool.read_after(0, 1000)
    assert [r.seq for r in rows] == list(range(1, 301))
    for rec, row in zip(batch, rows, strict=True):
        assert as_record(row) == rec
    assert await spool.head_seq() == 300
    assert await spool.resume_point("all") == "900"


async def test_append_keeps_order_and_exact_values_of_a_large_odd_batch(
    spool: Spool, corpus: list[NewRecord]
) -> None:
    # The append passes columns as one JSON array and bodies as one BLOB (eventpipe.spool.
    # schema): every value must come back exactly, in record order, for a whole burst.
    odd = [
        NewRecord(uid="uid-é-\"q\"-\\", resource_version="7", event_time=None, namespace="",
                  kind="Kind\u0000x", name="name\nline", reason="Reason 🚀", type="Warning",
                  occurrences=2**62, body=b'{"message":"\xc3\xa9 \\u0000 \\"q\\""}'),
        NewRecord(uid="uid-2", resource_version="8", event_time=1_700_000_000.123456,
                  namespace="ns", kind="Pod", name="p", reason="", type="", occurrences=1,
                  body=b"{}"),
        NewRecord(uid="uid-3", resource_version="9", event_time=5e-324, namespace="ns",
                  kind="Pod", name="p", reason="r", type="t", occurrences=3,
                  body=b"x" * 70_000),
    ]
    unique = {(r.resource_version, r.uid): r for r in corpus}  # the corpus repeats a few versions
    batch = odd + list(unique.values())
    assert await spool.append(batch, stream="all", resource_version="42") == list(
        range(len(batch)))
    rows = await spool.read_after(0, len(batch) + 1)
    assert [r.seq for r in rows] == list(range(1, len(batch) + 1))
    for rec, row in zip(batch, rows, strict=True):
        assert as_record(row) == rec
        assert type(row.body) is bytes and type(row.occurrences) is int
    assert await spool.resume_point("all") == "42"


async def test_a_batch_is_stored_in_record_order(spool: Spool, corpus: list[NewRecord]) -> None:
    # seq follows the records only because json_each walks the JSON array in array order
    # (eventpipe.spool.schema); nothing else in the append sorts. The records are in an
    # order that no column (nor the body) sorts them into, on both kinds of batch.
    shuffled = list({(r.resource_version, r.uid): r for r in corpus}.values())[:400]
    random.Random(7).shuffle(shuffled)
    with_nul = [r._replace(uid=f"{r.uid}\u0000{i}") for i, r in enumerate(shuffled[:50])]
    for column in ("uid", "resource_version", "event_time", "name", "body"):
        key = [value for r in shuffled if (value := getattr(r, column)) is not None]
        assert key != sorted(key) and key != sorted(key, reverse=True)
    await spool.append(shuffled, stream="s", resource_version=None)
    await spool.append(with_nul, stream="s", resource_version=None)
    rows = await spool.read_after(0, 1000)
    assert [as_record(row) for row in rows] == shuffled + with_nul
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))


def test_json_each_walks_an_array_in_order() -> None:
    # The SQLite behaviour the append relies on, on its own: elements come out by index.
    values = [f"{(i * 7919) % 1000:04}" for i in range(1000)]
    with closing(sqlite3.connect(":memory:")) as db:
        got = db.execute("SELECT key, value FROM json_each(?)", (json.dumps(values),)).fetchall()
    assert got == list(enumerate(values))


async def test_the_table_is_the_declared_row(spool: Spool, tmp_path: Path) -> None:
    # CREATE TABLE comes from StoredRow's declaration: same names, order and SQL types.
    with closing(sqlite3.connect(tmp_path / "spool.db")) as db:
        info = db.execute("PRAGMA table_info(events)").fetchall()
    assert [name for _, name, *_ in info] == list(StoredRow._fields)
    assert [sql_type for _, _, sql_type, *_ in info] == [
        column.sql.split()[0] for _, column in rows.COLUMNS]


async def test_text_with_nul_on_the_lookup_path(spool: Spool, corpus: list[NewRecord]) -> None:
    # A repeated version sends the batch down the lookup path, inside its own transaction.
    nul = NewRecord(uid="u\u0000id", resource_version="5", event_time=None, namespace="n",
                    kind="K", name="n\u0000m", reason="r", type="t", occurrences=1, body=b"{}")
    assert await spool.append([nul, nul, corpus[0]], stream="s", resource_version="6") == [0, 2]
    rows = await spool.read_after(0, 10)
    assert [(r.uid, r.name) for r in rows] == [("u\u0000id", "n\u0000m"),
                                               (corpus[0].uid, corpus[0].name)]
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
    assert [r.count_delta for r in rows] == [3, 4, 0, 2]
    await spool.forget(e.uid)
    await spool.append([version(e, "a5", 9)], stream="s", resource_version=None)
    assert (await spool.read_after(4, 10))[0].count_delta == 9
    assert await spool.resume_point("s") is None


async def test_count_delta_survives_reopen(open_spool: OpenSpool,
                                           corpus: list[NewRecord]) -> None:
    clock = Clock()
    e = corpus[0]
    s = await open_spool("x.db", clock=clock)
    await s.append([version(e, "1", 5)], stream="s", resource_version="1")
    await s.close()
    clock.now += 3 * 3600  # a long downtime: the window is anchored at the newest row
    s = await open_spool("x.db", clock=clock)
    await s.append([version(e, "2", 8)], stream="s", resource_version="2")
    assert (await s.read_after(1, 1))[0].count_delta == 3


async def test_observed_at_is_now_and_never_decreases(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:1], stream="s", resource_version=None)
    clock.now -= 50  # the wall clock stepped back
    await spool.append(corpus[1:2], stream="s", resource_version=None)
    rows = await spool.read_after(0, 10)
    assert [r.observed_at for r in rows] == [1_000_000.0, 1_000_000.0]


async def test_read_after_pages(spool: Spool, corpus: list[NewRecord]) -> None:
    await spool.append(corpus[:50], stream="s", resource_version=None)
    assert [r.seq for r in await spool.read_after(10, 5)] == [11, 12, 13, 14, 15]
    assert await spool.read_after(50, 5) == []


async def test_read_since_by_time_and_seq(
    spool: Spool, clock: Clock, corpus: list[NewRecord]
) -> None:
    for i in range(5):
        clock.now = 1000.0 * (i + 1) + 1_000_000
        await spool.append(corpus[i * 10 : i * 10 + 10], stream="s", resource_version=None)
    rows = await spool.read_since(since=1_003_000.0, limit=100)
    assert [r.seq for r in rows] == list(range(21, 51))
    rows = await spool.read_since(since=1_003_000.0, after_seq=40, limit=3)
    assert [r.seq for r in rows] == [41, 42, 43]
    rows = await spool.read_since(from_seq=45, limit=100)
    assert [r.seq for r in rows] == list(range(45, 51))
    assert await spool.read_since(since=2_000_000.0, limit=10) == []


async def test_read_seqs(spool: Spool, corpus: list[NewRecord]) -> None:
    await spool.append(corpus[:20], stream="s", resource_version=None)
    rows = await spool.read_seqs([7, 3, 3, 99, 12])
    assert [r.seq for r in rows] == [3, 7, 12]
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
    assert [r.seq for r in await spool.read_after(0, 3)] == [3, 7, 8]
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
    times = [r.event_time for r in corpus[:10] if r.event_time is not None]
    assert st["oldest_event_time"] == min(times)
    assert st["newest_event_time"] == max(times)
    assert st["receivers"] == {
        "a": {"acked_seq": 4, "lag_events": 6, "lag_seconds": 30.0, "dead_letters": 1},
        "b": {"acked_seq": 0, "lag_events": 10, "lag_seconds": 30.0, "dead_letters": 0},
    }
    st = await spool.stats()
    assert list(st["receivers"]) == ["a"]  # type: ignore[call-overload]


async def test_budget_block_raises_and_stores_nothing(
    open_spool: OpenSpool, corpus: list[NewRecord]
) -> None:
    s = await open_spool("b.db", max_bytes=1_000_000, when_full="block")
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
    s = await open_spool("b.db", max_bytes=1_000_000, when_full="block", history_window=0)
    assert await s.retention(["r"], now=2e10) == stored
    await s.append(synthetic(corpus, 100, offset=10**6), stream="s", resource_version="x")


async def test_budget_drop_oldest_reports_every_drop(
    open_spool: OpenSpool, corpus: list[NewRecord]
) -> None:
    drops: list[tuple[int, str]] = []
    s = await open_spool(
        "d.db",
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
    first = (await s.read_after(0, 1))[0].seq
    assert first == sum(n for n, _ in drops) + 1  # the oldest went, in order
    assert isinstance(st["bytes"], int) and st["bytes"] <= 1_000_000


async def test_a_batch_bigger_than_the_budget_is_refused(
    open_spool: OpenSpool, corpus: list[NewRecord]
) -> None:
    s = await open_spool("e.db", max_bytes=300_000, when_full="dropOldest")
    with pytest.raises(SpoolFullError):
        await s.append(synthetic(corpus, 2000), stream="s", resource_version="1")
    assert await s.head_seq() == 0


async def test_second_process_view_and_schema_check(
    spool: Spool, open_spool: OpenSpool, tmp_path: Path, corpus: list[NewRecord]
) -> None:
    await spool.append(corpus[:5], stream="s", resource_version="7")
    other = await open_spool()  # the same file, e.g. `eventpipe spool stats`
    assert await other.head_seq() == 5
    assert await other.resume_point("s") == "7"
    await spool.append(corpus[5:6], stream="s", resource_version="8")
    assert await other.head_seq() == 6
    await other.close()
    with closing(sqlite3.connect(tmp_path / "spool.db")) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        db.commit()
    with pytest.raises(SpoolSchemaError):
        await open_spool("spool.db")  # the fixture closes it should it open after all


async def test_bad_options(open_spool: OpenSpool) -> None:
    with pytest.raises(ValueError):
        await open_spool("x.db", when_full="panic")
    with pytest.raises(ValueError):
        await open_spool("x.db", synchronous="SOMETIMES")


async def test_sqlite_without_json_functions_is_named_at_open(
        open_spool: OpenSpool, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite before 3.38 may be built without them; the append needs them, so say so at once.
    monkeypatch.setattr(schema, "_JSON_PROBE", "SELECT json_no_such_function('[1]')")
    with pytest.raises(SpoolSchemaError, match="lacks the JSON functions"):
        await open_spool("spool.db")
