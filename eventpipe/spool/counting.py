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

The book is two generations rotated every hour, so an entry lives one to two hours after its
last update without per-entry timestamps; `forget` (DELETED seen) drops it at once. A
generation also rotates once it holds half of `max_uids` (`spool.occurrenceBookMaxUids`), so
the book never remembers more than `max_uids` uids however fast new Events come; at open it is
warmed from at most the newest `max_uids` rows of the window. A uid that fell out this way
counts its full occurrences once more when it next changes (an overcount of the metric, never a
lost event), as after a budget drop.

Memory: the book is the one structure that grows with traffic (a busy cluster creates 100k+
Events an hour), so it is keyed by a 60-bit hash of the uid rather than the uid string: a
two-digit int is 32 bytes against ~88 for a 36-character str (measured in
docs/performance.md). Entries live in two sorted arrays of 8-byte keys and values (16 bytes
an entry, looked up by bisection): a rotated generation and what the warm-up read are frozen
whole, and the current generation is a small dict of the newest entries (~80 bytes an entry
with its table; `recent_uids`, `spool.occurrenceBookRecentUids`, or one commit's updates if
more) in front of such arrays, into which the dict is merged before an update would pass it. A
merge copies the arrays in C and runs Python only per dict entry (a bisection and two copies),
so its Python work per event does not grow with the generation.
Python's str hash is salted per process, which is fine: the book is rebuilt from the spool at
every start. Two live uids sharing a key (odds about N / 2**60 per new uid, ~3e-13 with 300k
remembered) would give one event a wrong metric delta; the event itself is stored and
delivered either way.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

WARM_WINDOW_SECONDS = 2 * 3600.0
ROTATE_SECONDS = 3600.0
WARM_CHUNK_ROWS = 2_000
# The default of `spool.occurrenceBookMaxUids` (docs/performance.md: its memory).
MAX_UIDS = 200_000
# The default of `spool.occurrenceBookRecentUids`: most entries of the current generation kept
# in a dict before they are merged into its arrays (docs/performance.md: its memory and cost).
RECENT_UIDS = 16_384
# Below 2**60 an int has two 30-bit digits (32 bytes); a full 64-bit hash would need three.
_KEY_MASK = (1 << 60) - 1
_UNSIGNED_MAX = (1 << 64) - 1


def book_key(uid: str) -> int:
    """The book's key for a uid (module doc: Memory)."""
    return hash(uid) & _KEY_MASK


class FrozenGeneration:
    """A generation that is only read: keys sorted in one array, their occurrences in another.

    A forgotten uid keeps its key with occurrences 0, which counts the same as an unknown uid
    (a version's delta is its occurrences either way).
    """

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: array[int], values: array[int]) -> None:
        self._keys = keys
        self._values = values

    @classmethod
    def of(cls, entries: dict[int, int]) -> FrozenGeneration:
        """`entries` (key → occurrences) frozen."""
        keys = array("Q", sorted(entries))
        try:
            values = array("Q", map(entries.__getitem__, keys))
        except OverflowError:  # a count outside 0..2**64-1 in stored data: clamp it
            values = array("Q", (min(max(entries[k], 0), _UNSIGNED_MAX) for k in keys))
        return cls(keys, values)

    def merged(self, entries: dict[int, int]) -> FrozenGeneration:
        """A generation holding this one's entries and `entries` (key → occurrences), where
        `entries` win; this one must not be used afterwards (its values are reused)."""
        keys, values = self._keys, self._values
        if not keys:
            return FrozenGeneration.of(entries)
        out_keys, out_values = array("Q"), array("Q")
        start, end = 0, len(keys)
        for key in sorted(entries):
            value = entries[key]
            if not 0 <= value <= _UNSIGNED_MAX:  # a count outside 64 bits in stored data
                value = min(max(value, 0), _UNSIGNED_MAX)
            i = bisect_left(keys, key, start)
            if i < end and keys[i] == key:
                values[i] = value  # not copied yet: the copy below takes the new value
                continue
            if i > start:
                out_keys.extend(keys[start:i])
                out_values.extend(values[start:i])
                start = i
            out_keys.append(key)
            out_values.append(value)
        out_keys.extend(keys[start:])
        out_values.extend(values[start:])
        return FrozenGeneration(out_keys, out_values)

    def get(self, key: int) -> int | None:
        """Occurrences of `key`, None when absent (or forgotten)."""
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            return self._values[i] or None
        return None

    def forget(self, key: int) -> None:
        """Drop `key` (keeps its slot with occurrences 0)."""
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            self._values[i] = 0

    def __len__(self) -> int:
        """Keys held (forgotten ones included)."""
        return len(self._keys)


_EMPTY = FrozenGeneration(array("Q"), array("Q"))


class OccurrenceBook:
    """uid → occurrences of the last stored version, bounded by age."""

    __slots__ = ("_current", "_generation_max", "_merged", "_previous", "_rotated_at",
                 "max_uids", "recent_uids")

    def __init__(self, *, now: float, max_uids: int = MAX_UIDS,
                 recent_uids: int = RECENT_UIDS) -> None:
        """`max_uids`: most uids remembered, both generations together; `recent_uids`: most
        entries of the current generation held in a dict before they are merged into its
        arrays (module doc)."""
        # The current generation: `_current` (a dict of the newest entries) in front of
        # `_merged` (sorted arrays); a key in both has its newer occurrences in `_current`.
        self._current: dict[int, int] = {}
        self._merged = _EMPTY
        self._previous = _EMPTY
        self._rotated_at = now
        self.max_uids = max_uids
        self._generation_max = max(1, max_uids // 2)
        self.recent_uids = max(1, recent_uids)

    def warm(self, rows: Iterable[tuple[str, int]]) -> None:
        """Load (uid, occurrences) pairs in seq order; a later pair wins. Call `warmed` after
        the last chunk."""
        current = self._current
        for uid, occurrences in rows:
            if len(current) >= self.recent_uids:
                self._merge()
                current = self._current
            if self._generation_size() >= self._generation_max:
                self._rotate()
                current = self._current
            current[book_key(uid)] = occurrences

    def warmed(self) -> None:
        """The warm-up is over: when it filled less than a generation, freeze what it read
        (only looked up from now on) and start an empty current generation. The next rotation,
        within an hour, drops it: what the warm-up read was last updated before the start, so
        it has lived its hour by then. A warm-up that rotated keeps its newer generation as
        the current one (freezing it too would let the book pass `max_uids`)."""
        if self._generation_size() and not self._previous:
            self._rotate()

    def deltas(self, items: Iterable[tuple[str, int]]) -> tuple[list[int], dict[int, int]]:
        """Count deltas of the (uid, occurrences) versions, in order, without changing the book.

        Returns the deltas and the updates to `apply` once the versions are committed; a uid
        appearing twice in one batch is counted against its earlier version in the batch.
        """
        pending: dict[int, int] = {}
        out: list[int] = []
        current = self._current
        merged = self._merged
        previous = self._previous
        mask = _KEY_MASK
        for uid, occurrences in items:
            key = hash(uid) & mask  # book_key(uid), inlined: this runs per event
            prev = pending.get(key)
            if prev is None:
                prev = current.get(key)
                if prev is None:
                    prev = merged.get(key)
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
                self._generation_size() + len(updates) > self._generation_max):
            self._rotate()
            self._rotated_at = now
        elif len(self._current) + len(updates) > self.recent_uids:
            self._merge()
        self._current.update(updates)

    def __len__(self) -> int:
        """Entries held (both generations; a uid in both, or both parts of the current one,
        counts twice)."""
        return self._generation_size() + len(self._previous)

    def _generation_size(self) -> int:
        return len(self._current) + len(self._merged)

    def _merge(self) -> None:
        if self._current:
            self._merged = self._merged.merged(self._current)
            self._current = {}

    def _rotate(self) -> None:
        self._merge()
        self._previous = self._merged
        self._merged = _EMPTY

    def forget(self, uid: str) -> None:
        """The Event is gone (DELETED): its next appearance counts from zero."""
        key = book_key(uid)
        self._current.pop(key, None)
        self._merged.forget(key)
        self._previous.forget(key)
