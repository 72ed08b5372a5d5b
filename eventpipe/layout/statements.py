"""The statement closures a compiled template is made of: text, print, set, if, with, range.

Each returns the text it produced rather than writing to a shared buffer, which keeps the
common layout leaf (`{{ .Reason }}`) down to one call and one lookup. `range` is the only
statement whose output is not bounded by the template and the event size alone (ranges nest),
so it checks the output size as it goes and counts its iterations in a per-render slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from eventpipe.layout.errors import RenderError
from eventpipe.layout.values import go_type, text_of

Expr = Callable[[object, list[object]], object]
"""An expression: (dot, variable slots) -> value."""
Stmt = Callable[[object, list[object]], str]
"""A statement: (dot, variable slots) -> rendered text."""

MAX_ITERATIONS = 100_000
"""Range iterations allowed in one render, over all (nested) ranges together."""


def _text(text: str) -> Stmt:
    return lambda d, v: text


def sequence(parts: list[str | Stmt]) -> Stmt:
    """Concatenate statements, literal text merged and turned into constants."""
    merged: list[str | Stmt] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    stmts = [_text(p) if isinstance(p, str) else p for p in merged]
    if not stmts:
        return _text("")
    if len(stmts) == 1:
        return stmts[0]
    if len(stmts) == 2:
        first, second = stmts
        return lambda d, v: first(d, v) + second(d, v)
    return lambda d, v: "".join([s(d, v) for s in stmts])


def print_stmt(expr: Expr) -> Stmt:
    """`{{ pipeline }}`: the value printed like Go's %v (missing prints as "")."""

    def run(d: object, v: list[object]) -> str:
        value = expr(d, v)
        return value if type(value) is str else text_of(value)

    return run


def set_stmt(slot: int, expr: Expr) -> Stmt:
    """`{{ $x := pipeline }}` / `{{ $x = pipeline }}`: prints nothing."""

    def run(d: object, v: list[object]) -> str:
        v[slot] = expr(d, v)
        return ""

    return run


def if_stmt(cond: Expr, then: Stmt, otherwise: Stmt | None) -> Stmt:
    """`{{if}}`: Go's truth (false, 0, nil, empty string/list/map are false)."""
    els = otherwise or _text("")
    return lambda d, v: then(d, v) if cond(d, v) else els(d, v)


def with_stmt(value_of: Expr, then: Stmt, otherwise: Stmt | None) -> Stmt:
    """`{{with}}`: like if, and dot becomes the value inside."""
    els = otherwise or _text("")

    def run(d: object, v: list[object]) -> str:
        value = value_of(d, v)
        return then(value, v) if value else els(d, v)

    return run


def range_stmt(
    items_of: Expr,
    key_slot: int | None,
    elem_slot: int | None,
    body: Stmt,
    otherwise: Stmt | None,
    counter_slot: int,
    max_output: int,
) -> Stmt:
    """`{{range}}` over a list (index, item) or a map (key, value in sorted key order)."""
    els = otherwise or _text("")

    def run(d: object, v: list[object]) -> str:
        coll = items_of(d, v)
        pairs: Iterable[tuple[object, object]]
        if coll is None:
            pairs = ()
        elif isinstance(coll, list):
            pairs = enumerate(coll)
        elif isinstance(coll, dict):
            pairs = ((k, coll[k]) for k in sorted(coll))
        else:
            raise RenderError(f"range can't iterate over {go_type(coll)}")
        out: list[str] = []
        size = 0
        ran = False
        for key, elem in pairs:
            ran = True
            _count_iteration(v, counter_slot)
            if key_slot is not None:
                v[key_slot] = key
            if elem_slot is not None:
                v[elem_slot] = elem
            text = body(elem, v)
            size += len(text)
            if size > max_output:
                raise RenderError(f"output would exceed {max_output} characters")
            out.append(text)
        return "".join(out) if ran else els(d, v)

    return run


def _count_iteration(v: list[object], slot: int) -> None:
    count = v[slot]
    total = (count if isinstance(count, int) else 0) + 1
    if total > MAX_ITERATIONS:
        raise RenderError(f"more than {MAX_ITERATIONS} range iterations")
    v[slot] = total
