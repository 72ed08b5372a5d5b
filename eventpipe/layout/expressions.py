"""The expression closures of a compiled template: constants, variables, field chains, calls.

Field chains on dot with one or two steps (`.Reason`, `.InvolvedObject.Name`: most layout
leaves) get their own closures without a loop; that is the hot path of every sink.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eventpipe.layout.lexer import Token
from eventpipe.layout.statements import Expr
from eventpipe.layout.values import field_getter


def dot(d: object, v: list[object]) -> object:
    """The expression `.`."""
    return d


def var_parts(tok: Token) -> tuple[str, tuple[str, ...]]:
    value = tok.value
    assert isinstance(value, tuple)
    return str(value[0]), tuple(value[1])


def const(value: object) -> Expr:
    return lambda d, v: value


def var(slot: int) -> Expr:
    return lambda d, v: v[slot]


def chain(base: Expr, names: Sequence[str]) -> Expr:
    getters = [field_getter(name) for name in names]
    if not getters:
        return base
    if base is dot and len(getters) == 1:
        g1 = getters[0]
        return lambda d, v: g1(d)
    if base is dot and len(getters) == 2:
        g1, g2 = getters
        return lambda d, v: g2(g1(d))

    def run(d: object, v: list[object]) -> object:
        x = base(d, v)
        for g in getters:
            x = g(x)
        return x

    return run


def apply(fn: Callable[..., object], args: list[Expr]) -> Expr:
    if len(args) == 1:
        a = args[0]
        return lambda d, v: fn(a(d, v))
    if len(args) == 2:
        a, b = args
        return lambda d, v: fn(a(d, v), b(d, v))
    return lambda d, v: fn(*[arg(d, v) for arg in args])


def and_(args: list[Expr]) -> Expr:
    def run(d: object, v: list[object]) -> object:
        value: object = None
        for arg in args:
            value = arg(d, v)
            if not value:
                return value
        return value

    return run


def or_(args: list[Expr]) -> Expr:
    def run(d: object, v: list[object]) -> object:
        value: object = None
        for arg in args:
            value = arg(d, v)
            if value:
                return value
        return value

    return run


def assigning(slot: int, expr: Expr) -> Expr:
    def run(d: object, v: list[object]) -> object:
        v[slot] = value = expr(d, v)
        return value

    return run
