"""Index names from resmo's `indexFormat`: Go time layouts in braces, Go templates in `{{ }}`.

resmo (pkg/sinks/elasticsearch.go `formatIndexName`) replaces `{...}` with `time.Now()` formatted
by the Go layout inside, so `kube-events-{2006-01-02}` names a daily index; its OpenSearch sink
also renders `{{ .InvolvedObject.Namespace }}`-style template actions first. eventpipe does both
for both keys, with two deliberate differences:

- The time is the event's last-seen time (series.lastObservedTime → lastTimestamp → eventTime →
  firstTimestamp → creation), in UTC, and "now" only when the event has none. A batch retried
  after midnight, or replayed next week, lands in the same index as the first try, so its `_id`
  overwrites instead of duplicating; and a daily index holds what happened that day.
- Each `{...}` pair is one layout (resmo's greedy regex would take everything from the first `{`
  to the last `}` as a single layout when there are two).

Go layouts are translated once into a list of small formatting functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from eventpipe.delivery.contract import PermanentSinkError

Piece = Callable[[datetime], str]

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _h12(t: datetime) -> int:
    return t.hour % 12 or 12


# Go's reference-time tokens, longest first where one is a prefix of another (time/format.go).
_TOKENS: tuple[tuple[str, Piece], ...] = (
    ("January", lambda t: _MONTHS[t.month - 1]),
    ("Jan", lambda t: _MONTHS[t.month - 1][:3]),
    ("Monday", lambda t: _DAYS[t.weekday()]),
    ("Mon", lambda t: _DAYS[t.weekday()][:3]),
    ("MST", lambda t: "UTC"),
    ("2006", lambda t: f"{t.year:04d}"),
    ("002", lambda t: f"{t.timetuple().tm_yday:03d}"),
    ("01", lambda t: f"{t.month:02d}"),
    ("02", lambda t: f"{t.day:02d}"),
    ("03", lambda t: f"{_h12(t):02d}"),
    ("04", lambda t: f"{t.minute:02d}"),
    ("05", lambda t: f"{t.second:02d}"),
    ("06", lambda t: f"{t.year % 100:02d}"),
    ("15", lambda t: f"{t.hour:02d}"),
    ("_2", lambda t: f"{t.day:2d}"),
    ("1", lambda t: str(t.month)),
    ("2", lambda t: str(t.day)),
    ("3", lambda t: str(_h12(t))),
    ("4", lambda t: str(t.minute)),
    ("5", lambda t: str(t.second)),
    ("PM", lambda t: "PM" if t.hour >= 12 else "AM"),
    ("pm", lambda t: "pm" if t.hour >= 12 else "am"),
    ("Z07:00", lambda t: "Z"),
    ("Z0700", lambda t: "Z"),
    ("Z07", lambda t: "Z"),
    ("-07:00", lambda t: "+00:00"),
    ("-0700", lambda t: "+0000"),
    ("-07", lambda t: "+00"),
)
_FRACTION = re.compile(r"[.,](0+|9+)(?![0-9])")
_BRACES = re.compile(r"\{([^{}]*)\}")


def compile_go_layout(layout: str) -> Callable[[datetime], str]:
    """A formatter equivalent to Go's `time.Format(layout)` for a UTC time."""
    pieces: list[Piece | str] = []
    i = 0
    while i < len(layout):
        fraction = _FRACTION.match(layout, i)
        if fraction is not None:
            pieces.append(_fraction(layout[i], fraction.group(1)))
            i = fraction.end()
            continue
        for token, piece in _TOKENS:
            if layout.startswith(token, i):
                pieces.append(piece)
                i += len(token)
                break
        else:
            pieces.append(layout[i])
            i += 1

    def format_time(t: datetime) -> str:
        return "".join(p if isinstance(p, str) else p(t) for p in pieces)

    return format_time


def _fraction(sep: str, digits: str) -> Piece:
    width, trim = len(digits), digits[0] == "9"

    def piece(t: datetime) -> str:
        text = f"{t.microsecond:06d}{'0' * 3}"[:width]
        if trim:
            text = text.rstrip("0")
            return sep + text if text else ""
        return sep + text

    return piece


class IndexNamer:
    """Index name of one event: `index`, or `indexFormat` rendered for the event's time."""

    def __init__(self, *, index: str, index_format: str, where: str,
                 clock: Callable[[], float]) -> None:
        self._static = index if not index_format else None
        self._clock = clock
        self._template = None
        pattern = index_format
        if "{{" in pattern:
            from eventpipe.layout import compile_template

            # A LayoutError here is a config error: it propagates to startup.
            self._template = compile_template(pattern, where=f"{where}.indexFormat")
        self._pattern = pattern
        # Layouts known at startup are compiled once; rendered templates may yield new ones.
        self._layouts: dict[str, Callable[[datetime], str]] = {
            m.group(1): compile_go_layout(m.group(1)) for m in _BRACES.finditer(pattern)
            if "{{" not in pattern}

    @property
    def needs_event(self) -> bool:
        """True when the name depends on the event (time or template)."""
        return self._static is None

    def name(self, event: dict[str, object], when: float | None) -> str:
        """The index for `event` whose last-seen time is `when` (epoch s; None: now)."""
        if self._static is not None:
            return self._static
        pattern = self._pattern
        if self._template is not None:
            from eventpipe.layout import RenderError

            try:
                pattern = self._template.render(event)
            except RenderError as exc:
                raise PermanentSinkError(str(exc)) from exc
        if "{" not in pattern:
            return pattern
        moment = datetime.fromtimestamp(self._clock() if when is None else when, UTC)
        return _BRACES.sub(lambda m: self._layout(m.group(1))(moment), pattern)

    def _layout(self, text: str) -> Callable[[datetime], str]:
        found = self._layouts.get(text)
        if found is None:
            found = compile_go_layout(text)
            if len(self._layouts) < 256:  # bounded: rendered text may vary per event
                self._layouts[text] = found
        return found
