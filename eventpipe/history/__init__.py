"""`eventpipe events`: the spool read like `kubectl get events`, as far back as it keeps.

`show` is the whole command minus argument parsing: open the spool read-only, print the
latest matching Events (newest last), then optionally follow new versions until cancelled.
Without a limit every match is streamed (`eventpipe.history.stream`): memory stays bounded
however large the spool.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from eventpipe.history.gapnotes import (
    GapMarks,
    NoteSink,
    gap_line,
    gaps_among,
    interleave,
    to_stderr,
)
from eventpipe.history.kinds import canonical_kind, parse_for
from eventpipe.history.query import Filters, HistoryError, follow, latest, open_read_only
from eventpipe.history.render import OUTPUTS, render
from eventpipe.history.stream import stream_all
from eventpipe.spool import reading
from eventpipe.spool.rows import StoredRow

__all__ = ["OUTPUTS", "Filters", "HistoryError", "canonical_kind", "latest",
           "open_read_only", "parse_for", "show"]


async def show(
    path: str | Path,
    filters: Filters,
    *,
    output: str = "table",
    limit: int | None = 500,
    versions: bool = False,
    watch: bool = False,
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
    interval: float = 1.0,
    iterations: int | None = None,
    note: NoteSink = to_stderr,
) -> int:
    """Print what `filters` select from the spool at `path`; returns the number of rows shown.

    watch: after the listing, poll every `interval` s for versions stored since and print
    each (tables without a new header, json/yaml one object at a time), for `iterations`
    polls or until cancelled. Raises HistoryError when the spool cannot be read.
    With `versions`, the watch gaps recorded among the rows are shown where they fall
    (eventpipe.history.gapnotes); `note` receives them for json/yaml.
    """
    conn = await open_read_only(path)
    try:
        # Take the head first: the listing stops there and the watch starts after it, so a
        # version committed in between is printed exactly once.
        head = await reading.head_seq(conn)
        if limit is None:
            shown = await stream_all(conn, filters, output=output, versions=versions,
                                     max_seq=head, now=clock(), as_items=watch, echo=echo,
                                     marks=GapMarks(conn) if versions else None, note=note)
        else:
            rows = await latest(conn, filters, limit=limit, versions=versions, max_seq=head)
            shown = len(rows)
            if rows:
                text = render(rows, output, now=clock(), as_items=watch)
                gaps = await gaps_among(conn, rows) if versions else []
                if output in ("table", "wide"):
                    text = interleave(text, gaps, header=True)
                else:
                    for _, gap in gaps:
                        note(gap_line(gap))
                echo(text)
        if not shown and not watch:
            # kubectl's wording for a table; an empty List keeps json/yaml parseable.
            echo("No events found." if output in ("table", "wide") else render([], output,
                                                                               now=0.0))
        if not watch:
            return shown
        header = not shown

        def emit(new: list[StoredRow]) -> None:
            nonlocal shown, header
            echo(render(new, output, now=clock(), header=header, as_items=True))
            shown += len(new)
            header = False

        await follow(conn, filters, after_seq=head, emit=emit, interval=interval,
                     iterations=iterations)
        return shown
    finally:
        await conn.close()
