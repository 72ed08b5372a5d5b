"""Storm control: one message when a storm starts, one summary with a count when its window ends.

A crash-looping pod writes a new version of its BackOff Event every few seconds. With
`throttle: {window: 5m}` on a receiver, the first event of a key (by default cluster,
namespace, kind, name, reason) is sent as usual and opens a window; events of that key within
the window are acked without being sent and counted (`eventpipe_sink_throttled_total`); when
the window ends, the *last* of them is sent once more with a `throttle` entry added to the
event: `{"suppressed": occurrences, "versions": n, "window": "5m", "windowSeconds": 300}`.
Templates read it as `.Throttle.Suppressed`, `.Throttle.Versions`, `.Throttle.Window`; the IM
bots' default text gets a line "…and N more occurrences in the last 5m" (`summary_note`);
sinks without a layout send the event JSON with the `throttle` key in it.

Time is the spool's `observed_at`, not "now": a window spans events observed within
`window` of its first one, and the worker flushes windows by *stream time* — before it
processes a row observed at or after a window's end it sends that window's summary, and it
never acks such a row in the same batch as earlier ones (`before_next_end`). When the worker is
idle, stream time is the wall clock.

Restarts (at-least-once, no extra table): that ordering means that when the cursor has passed a
row observed at time L, every window that ended by L has been summarised. On start the worker
re-reads the acked rows of the last two windows and feeds them through the same logic without
sending (`restore`); windows that ended by L are dropped, the others are open again with their
counts, so a restart mid-window still sends the summary exactly once. The summary may be sent
twice only when the process stops right after sending it and before any later row is acked;
a storm unbroken for longer than two windows may be re-phased by a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol

import orjson

from eventpipe.spool.rows import StoredRow

_COLUMNS = ("namespace", "kind", "name", "reason", "type")
"""Key fields that are spool row columns; `cluster` is one value per process, so it adds
nothing."""


@dataclass(slots=True)
class Window:
    """One key's open window."""

    ends: float
    """observed_at at which the window closes."""
    versions: int = 0
    """Event versions suppressed."""
    occurrences: int = 0
    """Sum of the suppressed versions' count deltas."""
    last: StoredRow | None = None
    """The last suppressed row: the summary is this event, re-encoded."""


class Throttle:
    """The open windows of one receiver; see the module docstring."""

    def __init__(self, *, window: float, key: Sequence[str],
                 on_suppress: Callable[[], None] | None = None) -> None:
        if window <= 0:
            raise ValueError(f"throttle window must be positive, got {window!r}")
        unknown = [k for k in key if k != "cluster" and k not in _COLUMNS]
        if unknown:
            raise ValueError(f"unknown throttle key fields: {', '.join(unknown)}")
        self.window = window
        columns = [k for k in key if k != "cluster"]
        self._key: Callable[[StoredRow], Any] = (
            attrgetter(*columns) if columns else (lambda row: ()))
        self._on_suppress = on_suppress
        # Insertion order is end order: windows open in observed_at order with the same
        # length, so the first entry is always the next to end.
        self._windows: dict[Any, Window] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def admit(self, row: StoredRow) -> bool:
        """True: send this event (it opens a window). False: suppressed and counted."""
        if self._place(row):
            return True
        if self._on_suppress is not None:
            self._on_suppress()
        return False

    def _place(self, row: StoredRow) -> bool:
        key = self._key(row)
        observed = row.observed_at
        window = self._windows.get(key)
        if window is not None and observed < window.ends:
            window.versions += 1
            window.occurrences += row.count_delta
            window.last = row
            return False
        # The caller flushes ended windows first (before_next_end); an ended window still
        # here was empty or is being restored, so it is simply replaced.
        self._windows.pop(key, None)
        self._windows[key] = Window(ends=observed + self.window)
        return True

    def next_end(self) -> float | None:
        """When the earliest open window ends (None: no window open)."""
        for window in self._windows.values():
            return window.ends
        return None

    def due(self, now: float) -> list[Window]:
        """Close the windows ended by `now`; returns those that suppressed something."""
        summaries: list[Window] = []
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if window.ends > now:
                break
            del self._windows[key]
            if window.versions:
                summaries.append(window)
        return summaries

    def before_next_end(self, rows: list[StoredRow]) -> list[StoredRow]:
        """The leading rows observed before the next window ends: a batch never spans a
        window's end, so its summary goes out before anything observed after it is acked.
        Windows the batch itself opens end a window's length after its first row at the
        earliest, so the batch also stops there."""
        if not rows:
            return rows
        end = rows[0].observed_at + self.window
        for window in self._windows.values():
            end = min(end, window.ends)
            break
        if rows[-1].observed_at < end:
            return rows
        for index, row in enumerate(rows):
            if row.observed_at >= end:
                return rows[:index]
        return rows  # pragma: no cover - the last row is at or past the end

    def restore(self, rows: Iterable[StoredRow]) -> None:
        """Rebuild windows from rows already acked (the receiver's own, oldest first) as the
        live worker placed them; windows that ended before a later row were summarised then
        and are dropped. Nothing is counted or sent."""
        for row in rows:
            self.due(row.observed_at)
            self._place(row)

    def summary(self, window: Window) -> dict[str, Any]:
        """The summary event: the window's last event with the `throttle` entry added."""
        assert window.last is not None, "only windows that suppressed something summarise"
        event = orjson.loads(window.last.body)
        if not isinstance(event, dict):
            event = {}
        event["throttle"] = {"suppressed": window.occurrences or window.versions,
                             "versions": window.versions,
                             "window": format_duration(self.window),
                             "windowSeconds": self.window}
        return event


class AckedRows(Protocol):
    """What `restore_from_spool` reads: the spool's replay reads."""

    async def read_seqs(self, seqs: Sequence[int]) -> list[StoredRow]: ...
    async def read_since(self, *, since: float | None = None, from_seq: int | None = None,
                         after_seq: int = 0, limit: int) -> list[StoredRow]: ...


async def restore_from_spool(throttle: Throttle, spool: AckedRows, *, acked_seq: int,
                             now: float, selected: Callable[[list[StoredRow]], list[StoredRow]],
                             page: int = 1000) -> None:
    """`Throttle.restore` from the receiver's acked rows of the last two windows; `selected`
    keeps the rows the receiver takes (route, filters, age), as the live worker did."""
    if acked_seq <= 0:
        return
    at_cursor = await spool.read_seqs([acked_seq])
    # The cursor's row gone (retention, budget drop): keep every window, summaries may repeat.
    acked_until = at_cursor[0].observed_at if at_cursor else None
    since = (acked_until if acked_until is not None else now) - 2 * throttle.window
    after = 0
    while after < acked_seq:
        rows = await spool.read_since(since=since, after_seq=after, limit=page)
        rows = [row for row in rows if row.seq <= acked_seq]
        if not rows:
            break
        throttle.restore(selected(rows))
        after = rows[-1].seq
    if acked_until is not None:  # windows that ended by the cursor's row were summarised
        throttle.due(acked_until)


def summary_note(event: dict[str, object]) -> str:
    """"…and N more occurrences in the last 5m" for a summary event, "" for any other."""
    info = event.get("throttle")
    if not isinstance(info, dict):
        return ""
    count = info.get("suppressed")
    noun = "occurrence" if count == 1 else "occurrences"
    return f"…and {count} more {noun} in the last {info.get('window')}"


def format_duration(seconds: float) -> str:
    """300 -> "5m", 5400 -> "1h30m", 45.5 -> "45.5s" (the config's own spelling)."""
    if seconds <= 0:
        return "0s"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    rest = whole + (seconds - int(seconds))
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)
