"""Output of `eventpipe events`, shaped like kubectl's so the same eyes and scripts read it.

- table: LAST SEEN (relative age, kubectl's rounding, `(x5 over 10m)` when the event
  repeated), TYPE, REASON, OBJECT (Kind/name), MESSAGE — `kubectl events`' columns.
- wide: NAMESPACE first, then the table's columns plus SOURCE, FIRST SEEN and COUNT.
- json / yaml: a `List` of the stored Event objects exactly as the API server served them.

Both API groups are read: events.k8s.io/v1 keeps the message in `note`, the source in
`reportingController`/`deprecatedSource`, the first time in `deprecatedFirstTimestamp`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import yaml

from eventpipe.core.timestamps import parse_time
from eventpipe.spool.rows import StoredRow

OUTPUTS = ("table", "wide", "json", "yaml")
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter when PyYAML was built with it (~10x faster), else the pure-Python one."""
_PADDING = 3  # kubectl's tabwriter padding between columns


def human_age(seconds: float) -> str:
    """A duration the way kubectl prints ages (apimachinery's `duration.HumanDuration`)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d" if hours % 24 == 0 else f"{days}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return f"{days // 365}y" if days % 365 == 0 else f"{days // 365}y{days % 365}d"
    return f"{days // 365}y"


def _first_seen(obj: dict[str, Any]) -> float | None:
    for key in ("firstTimestamp", "deprecatedFirstTimestamp", "eventTime"):
        seen = parse_time(obj.get(key))
        if seen is not None:
            return seen
    return None


def _source(obj: dict[str, Any]) -> str:
    source = obj.get("source") or obj.get("deprecatedSource") or {}
    component = source.get("component") or obj.get("reportingController") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return ", ".join(part for part in (component, host) if part)


def _message(obj: dict[str, Any]) -> str:
    # One line per event: a multi-line message would break the table.
    return " ".join(str(obj.get("message") or obj.get("note") or "").split())


def _cells(row: StoredRow, now: float, *, wide: bool, last_cell: bool = True) -> list[str]:
    """The row's cells; without `last_cell` a table's MESSAGE is left empty (and the body not
    parsed when nothing else needs it): measuring column widths does not need it."""
    needs_body = wide or last_cell or row.occurrences > 1
    obj = orjson.loads(row.body) if needs_body else {}
    last = row.event_time if row.event_time is not None else row.observed_at
    first = _first_seen(obj)
    age = human_age(now - last)
    if row.occurrences > 1 and first is not None and not wide:
        age = f"{age} (x{row.occurrences} over {human_age(now - first)})"
    message = _message(obj) if wide or last_cell else ""
    cells = [age, row.type, row.reason, f"{row.kind}/{row.name}", message]
    if not wide:
        return cells
    first_text = human_age(now - first) if first is not None else "<unknown>"
    return [row.namespace, *cells[:4], _source(obj), cells[4], first_text, str(row.occurrences)]


def headings(*, wide: bool) -> list[str]:
    """The table's column names."""
    return (["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "SOURCE", "MESSAGE",
             "FIRST SEEN", "COUNT"] if wide else
            ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"])


def cell_lines(rows: Sequence[StoredRow], *, now: float, wide: bool,
               last_cell: bool = True) -> list[list[str]]:
    """One list of cells per row, in the table's column order (see `_cells`)."""
    return [_cells(row, now, wide=wide, last_cell=last_cell) for row in rows]


def widen(widths: list[int], lines: Sequence[Sequence[str]]) -> list[int]:
    """`widths` (one per column but the last, padding included) grown to fit `lines`."""
    for line in lines:
        for i in range(len(widths)):
            widths[i] = max(widths[i], len(line[i]) + _PADDING)
    return widths


def aligned(lines: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    """`lines` padded to `widths`; the last column is not padded."""
    return "\n".join(
        "".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + line[-1] for line in lines)


def table(rows: Sequence[StoredRow], *, now: float, wide: bool = False,
          header: bool = True) -> str:
    """Aligned columns like kubectl's tabwriter; the last column is not padded."""
    names = headings(wide=wide)
    lines = ([names] if header else []) + cell_lines(rows, now=now, wide=wide)
    if not lines:
        return ""
    return aligned(lines, widen([0] * (len(names) - 1), lines))


def objects(rows: Sequence[StoredRow]) -> list[dict[str, Any]]:
    """The stored Event objects, as served."""
    return [orjson.loads(row.body) for row in rows]


def as_list(rows: Sequence[StoredRow]) -> dict[str, Any]:
    """A `v1/List` of the objects, as `kubectl get events -o json` prints."""
    return {"apiVersion": "v1", "items": objects(rows), "kind": "List",
            "metadata": {"resourceVersion": ""}}


def dump(value: Any, output: str) -> str:
    """`value` as indented JSON or YAML text."""
    if output == "json":
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return dump_yaml(value).rstrip("\n")


def dump_yaml(value: Any) -> str:
    """`value` as YAML, in kubectl's key order (as stored), unicode kept."""
    text: str = yaml.dump(value, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True)
    return text


def render(rows: Sequence[StoredRow], output: str, *, now: float, header: bool = True,
           as_items: bool = False) -> str:
    """`rows` in `output` format; `as_items` prints objects one by one (for --watch)."""
    if output in ("table", "wide"):
        return table(rows, now=now, wide=output == "wide", header=header)
    if not as_items:
        return dump(as_list(rows), output)
    sep = "\n" if output == "json" else "\n---\n"
    return sep.join(dump(obj, output) for obj in objects(rows))
