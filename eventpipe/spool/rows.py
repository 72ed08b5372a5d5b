"""The spool's row, declared once: `StoredRow`'s fields are the `events` table's columns.

Each field is annotated with its Python type (what reads return) and a `Column`: its SQL
definition and who supplies its value. Derived from that declaration, and nowhere else
written down: the `CREATE TABLE events` statement, the column list every read selects, the
append's INSERT column list and its per-column expressions (eventpipe.spool.schema), and the
layout of the JSON array the append carries one record in (`append_parameters`).

`NewRecord` is the part the watcher supplies (the columns whose source is `RECORD`, in table
order). The type checker needs it written as a class, so its fields are checked against the
declaration when this module is imported: a field added, moved or retyped in one and not the
other fails at once, not in a test run.

Both are NamedTuples: one tuple per event, as cheap to build and to read as the bare tuples
they replace (same size; `row.seq` costs what `row[0]` does). Only this module relies on the
positions of their fields.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from functools import partial
from typing import Annotated, Any, Final, NamedTuple, cast

import orjson


class Source(Enum):
    """Where a column's value comes from."""

    KEY = "key"
    """Assigned by SQLite on insert (the rowid, `seq`)."""
    RECORD = "record"
    """A field of the watcher's `NewRecord`."""
    APPEND = "append"
    """Set by the spool when the batch is stored (`observed_at`, one value per batch)."""
    DELTA = "delta"
    """Computed per record by the spool's occurrence book (`count_delta`)."""


class Column(NamedTuple):
    """How one field of `StoredRow` is stored."""

    sql: str
    """Type and constraints in `CREATE TABLE`."""
    source: Source = Source.RECORD


class StoredRow(NamedTuple):
    """One stored Event version, as reads return it; fields in table order.

    Keep `body` last: SQLite reads a row's columns front to back, so a column behind a body
    that spills into overflow pages would make every query on it read those pages.
    """

    seq: Annotated[int, Column("INTEGER PRIMARY KEY AUTOINCREMENT", Source.KEY)]
    uid: Annotated[str, Column("TEXT NOT NULL")]
    resource_version: Annotated[str, Column("TEXT NOT NULL")]
    observed_at: Annotated[float, Column("REAL NOT NULL", Source.APPEND)]
    """When the spool stored it (epoch seconds); never decreases with seq."""
    event_time: Annotated[float | None, Column("REAL")]
    """The Event's last-seen time (epoch seconds), None when the object has none."""
    namespace: Annotated[str, Column("TEXT NOT NULL")]
    kind: Annotated[str, Column("TEXT NOT NULL")]
    """The involved object's kind."""
    name: Annotated[str, Column("TEXT NOT NULL")]
    """The involved object's name."""
    reason: Annotated[str, Column("TEXT NOT NULL")]
    type: Annotated[str, Column("TEXT NOT NULL")]
    occurrences: Annotated[int, Column("INTEGER NOT NULL")]
    count_delta: Annotated[int, Column("INTEGER NOT NULL", Source.DELTA)]
    """How much this version adds to the event's occurrences (eventpipe.spool.counting)."""
    body: Annotated[bytes, Column("BLOB NOT NULL")]
    """The Event object exactly as the API server served it (JSON bytes)."""


class NewRecord(NamedTuple):
    """One normalised Event version, as the watcher hands it to `Spool.append`: the
    `RECORD` columns of `StoredRow`, in its order (checked at import)."""

    uid: str
    resource_version: str
    event_time: float | None
    namespace: str
    kind: str
    name: str
    reason: str
    type: str
    occurrences: int
    body: bytes


def declaration(row: type[tuple[Any, ...]]) -> tuple[tuple[str, Any, Column], ...]:
    """(name, Python type, Column) of each field of a NamedTuple annotated like `StoredRow`."""
    hints = typing.get_type_hints(row, include_extras=True)
    out = []
    for field in cast(Any, row)._fields:
        python_type, column = typing.get_args(hints[field])
        out.append((field, python_type, column))
    return tuple(out)


def _declaration() -> tuple[tuple[str, Any, Column], ...]:
    return declaration(StoredRow)


def create_table_sql(table: str, row: type[tuple[Any, ...]],
                     constraints: Sequence[str] = ()) -> str:
    """`CREATE TABLE IF NOT EXISTS <table>` with the columns `row` declares, in its order."""
    lines = [f"{name} {column.sql}" for name, _, column in declaration(row)]
    return "CREATE TABLE IF NOT EXISTS {} ({})".format(table, ", ".join(
        [*lines, *constraints]))


COLUMNS: Final = tuple((name, column) for name, _, column in _declaration())
"""(name, Column) of every column, in table order."""


def _check_new_record() -> None:
    declared = [(name, t) for name, t, c in _declaration() if c.source is Source.RECORD]
    hints = typing.get_type_hints(NewRecord)
    actual = [(name, hints[name]) for name in NewRecord._fields]
    if actual != declared:
        raise TypeError(f"NewRecord fields {actual} differ from StoredRow's RECORD columns "
                        f"{declared}")
    if NewRecord._fields[-1] != "body":
        raise TypeError("NewRecord.body must be last: append_parameters slices it off")


_check_new_record()

SELECT_COLUMNS: Final = ", ".join(StoredRow._fields)
"""What every read selects, so that rows come back in `StoredRow` order."""


def create_table(constraints: Sequence[str]) -> str:
    """`CREATE TABLE IF NOT EXISTS events` with the declared columns and `constraints`."""
    return create_table_sql("events", StoredRow, constraints)


# tuple.__new__ builds the NamedTuple in C: no Python frame per row, unlike StoredRow(*row).
_as_stored_row = cast(Callable[[Sequence[Any]], StoredRow], partial(tuple.__new__, StoredRow))


def stored_rows(raw: Iterable[Sequence[Any]]) -> list[StoredRow]:
    """sqlite3's plain row tuples of a `SELECT_COLUMNS` query as `StoredRow`s."""
    return list(map(_as_stored_row, raw))


# -- the append's JSON array ------------------------------------------------------------
#
# One element per record: the record's fields except the body, then where the body sits in
# the bodies BLOB (1-based offset as SQL substr() counts, and length), then count_delta.
# With `texts_in_bodies` every text field is an [offset, length] pair into the same BLOB
# instead of a JSON string (see `append_parameters`).

_TEXT_FIELDS: Final = frozenset(name for name, t, _ in _declaration() if t is str)
JSON_LAYOUT: Final = (*NewRecord._fields[:-1], "body_offset", "body_length", "count_delta")
"""Names of a JSON element's items, in array order."""

# SQLite's JSON functions end a text value at an escaped U+0000 (which the API server may
# serve inside a reason or a name): a batch whose JSON holds one carries its texts in the BLOB.
_NUL_ESCAPE = b"\\u0000"


def _json_item(name: str) -> str:
    return f"json_extract(value, '$[{JSON_LAYOUT.index(name)}]')"


def _value_sql(name: str, column: Column) -> str:
    """The SQL expression of column `name` for one element `value` of the JSON array."""
    if column.source is Source.APPEND:
        return f"NEW.{name}"
    if column.source is Source.DELTA:
        return _json_item(name)
    if name == "body":
        return f"substr(NEW.bodies, {_json_item('body_offset')}, {_json_item('body_length')})"
    if name not in _TEXT_FIELDS:
        return _json_item(name)
    at = JSON_LAYOUT.index(name)
    in_bodies = (f"CAST(substr(NEW.bodies, json_extract(value, '$[{at}][0]'), "
                 f"json_extract(value, '$[{at}][1]')) AS TEXT)")
    # A flag per statement, tested per value: no JSON lookup for the usual batch.
    return f"CASE WHEN NEW.texts_in_bodies THEN {in_bodies} ELSE {_json_item(name)} END"


INSERT_COLUMNS: Final = tuple(name for name, c in COLUMNS if c.source is not Source.KEY)
"""The columns an append writes (seq is SQLite's)."""
INSERT_VALUES: Final = tuple(_value_sql(name, c) for name, c in COLUMNS
                             if c.source is not Source.KEY)
"""The append's expression for each of INSERT_COLUMNS, over json_each's `value`."""


def append_parameters(records: Sequence[NewRecord], deltas: Sequence[int],
                      ) -> tuple[bytes, bytes, bool]:
    """(columns JSON, bodies BLOB, texts_in_bodies) for the append (JSON_LAYOUT)."""
    columns = []
    bodies = []
    offset = 1  # SQL substr() counts from 1
    for record, delta in zip(records, deltas, strict=True):
        body = record[-1]
        size = len(body)
        columns.append((*record[:-1], offset, size, delta))
        bodies.append(body)
        offset += size
    encoded = orjson.dumps(columns)
    if _NUL_ESCAPE not in encoded:
        return encoded, b"".join(bodies), False
    return _texts_in_bodies(records, deltas)


def _texts_in_bodies(records: Sequence[NewRecord], deltas: Sequence[int],
                     ) -> tuple[bytes, bytes, bool]:
    """The JSON array with every text field as an [offset, length] pair into the BLOB, where
    its UTF-8 bytes are kept exactly (U+0000 included); for the rare batch that needs it."""
    text_at = [i for i, name in enumerate(NewRecord._fields) if name in _TEXT_FIELDS]
    columns: list[list[object]] = []
    blob = bytearray()
    for record, delta in zip(records, deltas, strict=True):
        element: list[object] = list(record[:-1])
        for i in text_at:
            text = cast(str, record[i]).encode()
            element[i] = (len(blob) + 1, len(text))
            blob += text
        body = record[-1]
        element += (len(blob) + 1, len(body), delta)
        blob += body
        columns.append(element)
    return orjson.dumps(columns), bytes(blob), True
