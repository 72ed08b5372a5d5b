"""The occurrence book remembers a bounded number of uids however fast new Events come, and a
restart reads a bounded number of rows to warm it (eventpipe.spool.counting)."""

from __future__ import annotations

import random

from eventpipe.spool import counting
from eventpipe.spool.counting import OccurrenceBook
from eventpipe.spool.rows import NewRecord
from tests.conftest import OpenSpool
from tests.test_spool_support import corpus_records, synthetic


def test_the_book_holds_at_most_two_generations_of_uids() -> None:
    book = OccurrenceBook(now=0.0)
    generation = counting.MAX_UIDS // 2
    for start in range(0, 5 * generation, 1000):
        _, updates = book.deltas([(f"uid-{i}", 1) for i in range(start, start + 1000)])
        book.apply(updates, now=1.0)  # all within one hour: only the size rotates
    assert len(book) <= counting.MAX_UIDS
    # The newest uids are still known: their next version counts only the difference.
    newest = f"uid-{5 * generation - 1}"
    assert book.deltas([(newest, 4)])[0] == [3]


async def test_a_restart_warms_the_book_from_a_bounded_number_of_rows(
        open_spool: OpenSpool) -> None:
    records: list[NewRecord] = synthetic(corpus_records(), 1000)
    first = await open_spool("book.db", occurrence_book_max_uids=100)
    for start in range(0, 1000, 250):
        await first.append(records[start:start + 250], stream="s", resource_version=str(start))
    await first.close()
    again = await open_spool("book.db", occurrence_book_max_uids=100)
    assert len(again._book) <= 100
    newest = records[-1]
    deltas, _ = again._book.deltas([(newest.uid, newest.occurrences + 2)])
    assert deltas == [2], "the newest rows were the ones warmed"


def test_a_rotated_generation_still_counts_deltas_and_forgets() -> None:
    # After a rotation the older uids are only in the frozen generation (sorted arrays).
    book = OccurrenceBook(now=0.0, max_uids=20)
    _, updates = book.deltas([(f"old-{i}", i + 1) for i in range(10)])
    book.apply(updates, now=1.0)
    _, updates = book.deltas([("new-0", 1)])
    book.apply(updates, now=1.0)  # the current generation is full: rotates first
    assert book.deltas([("old-3", 9), ("old-9", 10), ("unknown", 2)])[0] == [5, 0, 2]
    book.forget("old-3")
    assert book.deltas([("old-3", 9), ("old-4", 9)])[0] == [9, 4]


def test_an_hour_rotates_and_the_next_hour_forgets() -> None:
    book = OccurrenceBook(now=0.0)
    _, updates = book.deltas([("a", 3)])
    book.apply(updates, now=10.0)
    _, updates = book.deltas([("b", 1)])
    book.apply(updates, now=10.0 + counting.ROTATE_SECONDS)  # a is now in the frozen one
    assert book.deltas([("a", 5)])[0] == [2]
    _, updates = book.deltas([("b", 2)])
    book.apply(updates, now=10.0 + 2 * counting.ROTATE_SECONDS)  # a is dropped
    assert book.deltas([("a", 5), ("b", 4)])[0] == [5, 2]


def test_the_warm_up_is_frozen_and_a_later_row_wins() -> None:
    book = OccurrenceBook(now=0.0, max_uids=100)
    book.warm([("a", 2), ("b", 7), ("a", 4)])
    book.warmed()
    assert len(book) == 2
    assert book.deltas([("a", 6), ("b", 7)])[0] == [2, 0]


def test_a_warm_up_that_rotated_keeps_within_the_bound() -> None:
    book = OccurrenceBook(now=0.0, max_uids=10)
    book.warm((f"uid-{i}", 2) for i in range(25))
    book.warmed()
    assert len(book) <= 10
    assert book.deltas([("uid-24", 3), ("uid-0", 3)])[0] == [1, 3]


def test_a_count_outside_64_bits_is_clamped_when_frozen() -> None:
    book = OccurrenceBook(now=0.0, max_uids=100)
    book.warm([("huge", 1 << 70), ("small", 3)])
    book.warmed()
    assert book.deltas([("small", 4)])[0] == [1]
    assert book.deltas([("huge", 5)])[0] == [5]  # smaller than the clamped count: a reset


def test_merging_the_newest_entries_into_the_arrays_counts_as_a_dict_would() -> None:
    # A small dict part merges often: updates of merged uids, new uids between merged ones,
    # forgets in both parts, a reset; checked against a plain dict of the last occurrences.
    rng = random.Random(16)
    book = OccurrenceBook(now=0.0, max_uids=100_000, recent_uids=7)
    last: dict[str, int] = {}
    for _ in range(300):
        batch = [(f"uid-{rng.randrange(400)}", rng.randrange(1, 50))
                 for _ in range(rng.randrange(1, 12))]
        expected = []
        seen = dict(last)
        for uid, occurrences in batch:
            prev = seen.get(uid)
            expected.append(occurrences if prev is None or occurrences < prev
                            else occurrences - prev)
            seen[uid] = occurrences
        deltas, updates = book.deltas(batch)
        assert deltas == expected
        book.apply(updates, now=1.0)
        last = seen
        if rng.random() < 0.2:
            gone = f"uid-{rng.randrange(400)}"
            book.forget(gone)
            last.pop(gone, None)
    assert len(book) >= len(last)
