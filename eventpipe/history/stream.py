"""`eventpipe events --limit 0`: every matching Event, streamed from the cursor in bounded memory.

A spool holds millions of versions; collecting them first (rows, objects, then one text) took
gigabytes. Here rows come from SQLite `FETCH_ROWS` at a time and each chunk is printed before the
next is read, so memory does not grow with the spool:

- Latest version only: ``seq IN (SELECT MAX(seq) ... GROUP BY uid)`` lets SQLite pick one row
  per uid (its sorter and the IN index spill to temporary files, not to this process), instead
  of a Python set of every uid seen.
- json / yaml: the `List` is written as a head, the items one by one, and a tail, byte for
  byte what dumping the whole list at once prints.
- table / wide: kubectl aligns columns to the widest cell, so a first pass only measures the
  cells and a second prints them.
- With `marks` (`--versions`), each chunk's watch gaps are shown where they fall
  (eventpipe.history.gapnotes): a line in the table, `note` (stderr) for json/yaml.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiosqlite
import orjson

from eventpipe.history.gapnotes import GapMarks, NoteSink, gap_line, interleave
from eventpipe.history.query import FETCH_ROWS, Filters, low_seq
from eventpipe.history.render import (
    aligned,
    cell_lines,
    dump,
    dump_yaml,
    headings,
    render,
    widen,
)
from eventpipe.spool.rows import SELECT_COLUMNS, StoredRow, stored_rows

_JSON_ITEM_INDENT = " " * 4


async def chunks(conn: aiosqlite.Connection, filters: Filters, *, versions: bool,
                 max_seq: int) -> AsyncIterator[list[StoredRow]]:
    """The matching rows up to `max_seq`, oldest first, `FETCH_ROWS` at a time."""
    low = await low_seq(conn, filters.since)
    if low is None:
        return
    where, params = filters.where(low)
    where += " AND seq <= ?"
    params.append(max_seq)
    if versions:
        sql = f"SELECT {SELECT_COLUMNS} FROM events WHERE {where} ORDER BY seq"
    else:
        sql = (f"SELECT {SELECT_COLUMNS} FROM events WHERE seq IN (SELECT MAX(seq) FROM "
               f"events WHERE {where} GROUP BY uid) ORDER BY seq")
    async with conn.execute(sql, params) as cursor:
        while batch := await cursor.fetchmany(FETCH_ROWS):
            yield stored_rows(batch)


async def stream_all(conn: aiosqlite.Connection, filters: Filters, *, output: str,
                     versions: bool, max_seq: int, now: float, as_items: bool,
                     echo: Callable[[str], None], marks: GapMarks | None = None,
                     note: NoteSink = print) -> int:
    """Print every matching Event up to `max_seq`; returns how many (0: nothing printed)."""
    table = output in ("table", "wide")

    def rows() -> AsyncIterator[list[StoredRow]]:
        source = chunks(conn, filters, versions=versions, max_seq=max_seq)
        return source if marks is None or table else _noting(source, marks, note)

    if table:
        return await _table(rows, wide=output == "wide", now=now, echo=echo, marks=marks)
    shown = 0
    if as_items:
        async for chunk in rows():
            echo(render(chunk, output, now=now, as_items=True))
            shown += len(chunk)
        return shown
    return await (_json_list if output == "json" else _yaml_list)(rows, echo)


async def _noting(source: AsyncIterator[list[StoredRow]], marks: GapMarks,
                  note: NoteSink) -> AsyncIterator[list[StoredRow]]:
    async for chunk in source:
        for _, gap in await marks.among(chunk):
            note(gap_line(gap))
        yield chunk


async def _table(rows: Callable[[], AsyncIterator[list[StoredRow]]], *, wide: bool,
                 now: float, echo: Callable[[str], None], marks: GapMarks | None) -> int:
    names = headings(wide=wide)
    widths = widen([0] * (len(names) - 1), [names])
    shown = 0
    async for chunk in rows():
        widen(widths, cell_lines(chunk, now=now, wide=wide, last_cell=False))
        shown += len(chunk)
    if not shown:
        return 0
    header = [names]
    async for chunk in rows():
        text = aligned(header + cell_lines(chunk, now=now, wide=wide), widths)
        if marks is not None:
            text = interleave(text, await marks.among(chunk), header=bool(header))
        echo(text)
        header = []
    return shown


async def _json_list(rows: Callable[[], AsyncIterator[list[StoredRow]]],
                     echo: Callable[[str], None]) -> int:
    shown = 0
    pending = ""  # the last item so far: the comma after it waits for the next one
    async for chunk in rows():
        items = [_json_item(row) for row in chunk]
        if not shown:
            echo('{\n  "apiVersion": "v1",\n  "items": [')
        else:
            items.insert(0, pending)
        pending = items.pop()
        if items:
            echo(",\n".join(items) + ",")
        shown += len(chunk)
    if not shown:
        return 0
    echo(pending)
    echo('  ],\n  "kind": "List",\n  "metadata": {\n    "resourceVersion": ""\n  }\n}')
    return shown


def _json_item(row: StoredRow) -> str:
    text = orjson.dumps(orjson.loads(row.body), option=orjson.OPT_INDENT_2).decode()
    return "\n".join(_JSON_ITEM_INDENT + line for line in text.split("\n"))


async def _yaml_list(rows: Callable[[], AsyncIterator[list[StoredRow]]],
                     echo: Callable[[str], None]) -> int:
    shown = 0
    async for chunk in rows():
        if not shown:
            echo("apiVersion: v1\nitems:")
        objects = [orjson.loads(row.body) for row in chunk]
        echo(dump_yaml(objects).rstrip("\n"))
        shown += len(chunk)
    if shown:
        echo(dump({"kind": "List", "metadata": {"resourceVersion": ""}}, "yaml"))
    return shown
