"""The occurrence book remembers a bounded number of uids however fast new Events come, and a
restart reads a bounded number of rows to warm it (eventpipe.spool.counting)."""

from __future__ import annotations

import pytest

from eventpipe.spool import counting, spool
from eventpipe.spool.counting import OccurrenceBook
from eventpipe.spool.rows import NewRecord
from tests.conftest import OpenSpool
from tests.test_spool_support import corpus_records, synthetic


def test_the_book_holds_at_most_two_generations_of_uids() -> None:
    book = OccurrenceBook(now=0.0)
    for start in range(0, 5 * counting.GENERATION_MAX, 1000):
        _, updates = book.deltas([(f"uid-{i}", 1) for i in range(start, start + 1000)])
        book.apply(updates, now=1.0)  # all within one hour: only the size rotates
    assert len(book) <= 2 * counting.GENERATION_MAX
    # The newest uids are still known: their next version counts only the difference.
    newest = f"uid-{5 * counting.GENERATION_MAX - 1}"
    assert book.deltas([(newest, 4)])[0] == [3]


async def test_a_restart_warms_the_book_from_a_bounded_number_of_rows(
        open_spool: OpenSpool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "GENERATION_MAX", 50)
    monkeypatch.setattr(spool, "WARM_MAX_ROWS", 100)
    records: list[NewRecord] = synthetic(corpus_records(), 1000)
    first = await open_spool("book.db")
    for start in range(0, 1000, 250):
        await first.append(records[start:start + 250], stream="s", resource_version=str(start))
    await first.close()
    again = await open_spool("book.db")
    assert len(again._book) <= 100
    newest = records[-1]
    deltas, _ = again._book.deltas([(newest.uid, newest.occurrences + 2)])
    assert deltas == [2], "the newest rows were the ones warmed"
