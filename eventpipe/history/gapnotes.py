"""Where the spool's recorded gaps (eventpipe.spool.gaps) fall among the versions
`eventpipe events --versions` lists, so a reader sees what may be missing between two of them.

A gap belongs to the listing when its stream covers a listed row's namespace and it falls
inside the listing: before a version its relist stored, or between two listed versions. In a
table it is one line before the first version after it; in json/yaml (which must stay a
parseable List of Events) the lines go to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import aiosqlite

from eventpipe.spool.gaps import Gap, describe, read_gaps
from eventpipe.spool.rows import StoredRow


async def gaps_among(conn: aiosqlite.Connection, rows: Sequence[StoredRow]
                     ) -> list[tuple[int, Gap]]:
    """(index of the first row after the gap, gap) for each gap that falls among `rows`
    (ascending seq), in order."""
    if not rows:
        return []
    namespaces = {row.namespace for row in rows}
    found = await read_gaps(conn, low_seq=rows[0].seq, high_seq=rows[-1].seq)
    out: list[tuple[int, Gap]] = []
    for gap in found:
        if gap.namespace and gap.namespace not in namespaces:
            continue
        index = next(i for i, row in enumerate(rows) if row.seq > gap.after_seq)
        out.append((index, gap))
    return out


class GapMarks:
    """The gaps among successive chunks of a streamed listing, each reported once."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._shown: set[int] = set()

    async def among(self, rows: Sequence[StoredRow]) -> list[tuple[int, Gap]]:
        """`gaps_among(rows)` less the gaps an earlier chunk already reported."""
        found = [(i, gap) for i, gap in await gaps_among(self._conn, rows)
                 if gap.id not in self._shown]
        self._shown.update(gap.id for _, gap in found)
        return found


def gap_line(gap: Gap) -> str:
    """The marker line shown in place of what was not watched."""
    return f"--- {describe(gap)} ---"


def interleave(table: str, gaps: Sequence[tuple[int, Gap]], *, header: bool) -> str:
    """The rendered table (one line per row, after an optional header) with each gap's line
    before the row it precedes."""
    lines = table.split("\n")
    offset = 1 if header else 0
    for shift, (index, gap) in enumerate(gaps):
        lines.insert(offset + index + shift, gap_line(gap))
    return "\n".join(lines)


def to_stderr(text: str) -> None:
    """Where gap lines go for json/yaml output."""
    print(text, file=sys.stderr)


NoteSink = Callable[[str], None]
