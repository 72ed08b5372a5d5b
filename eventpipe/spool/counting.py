"""Occurrence bookkeeping: what `count_delta` of a new Event version is.

A merged Event's `count` grows (1 → 2 → ... → 500); the metric `events_total` must grow by
the difference, not by the total. So the spool remembers, per uid, the occurrences of the
last stored version, and a new version's delta is

- its occurrences, if the uid was never seen (or was forgotten),
- its occurrences, if they are smaller than before (the counter was reset),
- otherwise new occurrences minus the previous ones (0 when only other fields changed).

Decision on the DB fallback: there is none on the hot path. The book is warmed at open from
the stored rows of the two hours before the newest stored observation (the Event TTL is one
hour and refreshed on every update, so any Event still alive had its last version stored in
that window — even after a long downtime, because the window is anchored at the newest row,
not at "now"). A uid missing from the book is therefore new, and a lookup would need an index
on uid that every insert pays for. The one case this misses: rows of a still-live Event
removed by a `dropOldest` budget drop before a restart; the next version then counts its full
occurrences (an overcount, never a loss).

The book is two dicts rotated every hour (generations), so an entry lives one to two hours
after its last update without per-entry timestamps; `forget` (DELETED seen) drops it at once.
A generation also rotates once it holds `GENERATION_MAX` uids, so the book never remembers
more than twice that many (~16 MiB, docs/performance.md), however fast new Events
come; at open it is warmed from at most the newest `2 * GENERATION_MAX` rows of the window.
A uid that fell out this way counts its full occurrences once more when it next changes (an
overcount of the metric, never a lost event), as after a budget drop.

Memory: the book is the one structure that grows with traffic (a busy cluster creates 100k+
Events an hour), so it is keyed by a 60-bit hash of the uid rather than the uid string: a
two-digit int is 32 bytes against ~88 for a 36-character str (measured in
docs/performance.md).
Python's str hash is salted per process, which is fine: the book is rebuilt from the spool at
every start. Two live uids sharing a key (odds about N / 2**60 per new uid, ~3e-13 with 300k
remembered) would give one event a wrong metric delta; the event itself is stored and
delivered either way.
"""

from __future__ import annotations

from collections.abc import Iterable

WARM_WINDOW_SECONDS = 2 * 3600.0
ROTATE_SECONDS = 3600.0
WARM_CHUNK_ROWS = 10_000
GENERATION_MAX = 100_000
WARM_MAX_ROWS = 2 * GENERATION_MAX
# Below 2**60 an int has two 30-bit digits (32 bytes); a full 64-bit hash would need three.
_KEY_MASK = (1 << 60) - 1


def book_key(uid: str) -> int:
    """The book's key for a uid (module doc: Memory)."""
    return hash(uid) & _KEY_MASK


class OccurrenceBook:
    """uid → occurrences of the last stored version, bounded by age."""

    __slots__ = ("_current", "_previous", "_rotated_at")

    def __init__(self, *, now: float) -> None:
        self._current: dict[int, int] = {}
        self._previous: dict[int, int] = {}
        self._rotated_at = now

    def warm(self, rows: Iterable[tuple[str, int]]) -> None:
        """Load (uid, occurrences) pairs in seq order; a later pair wins."""
        for uid, occurrences in rows:
            if len(self._current) >= GENERATION_MAX:
                self._rotate()
            self._current[book_key(uid)] = occurrences

    def deltas(self, items: Iterable[tuple[str, int]]) -> tuple[list[int], dict[int, int]]:
        """Count deltas of the (uid, occurrences) versions, in order, without changing the book.

        Returns the deltas and the updates to `apply` once the versions are committed; a uid
        appearing twice in one batch is counted against its earlier version in the batch.
        """
        pending: dict[int, int] = {}
        out: list[int] = []
        current = self._current
        previous = self._previous
        mask = _KEY_MASK
        for uid, occurrences in items:
            key = hash(uid) & mask  # book_key(uid), inlined: this runs per event
            prev = pending.get(key)
            if prev is None:
                prev = current.get(key)
                if prev is None:
                    prev = previous.get(key)
            if prev is None or occurrences < prev:
                out.append(occurrences)
            else:
                out.append(occurrences - prev)
            pending[key] = occurrences
        return out, pending

    def apply(self, updates: dict[int, int], *, now: float) -> None:
        """Record committed versions; rotates generations when an hour has passed."""
        if now - self._rotated_at >= ROTATE_SECONDS or (
                len(self._current) + len(updates) > GENERATION_MAX):
            self._rotate()
            self._rotated_at = now
        self._current.update(updates)

    def __len__(self) -> int:
        """uids remembered (both generations; one in both counts twice)."""
        return len(self._current) + len(self._previous)

    def _rotate(self) -> None:
        self._previous = self._current
        self._current = {}

    def forget(self, uid: str) -> None:
        """The Event is gone (DELETED): its next appearance counts from zero."""
        key = book_key(uid)
        self._current.pop(key, None)
        self._previous.pop(key, None)
