"""The functions a layout may call: Go's template builtins and the sprig functions resmo users use.

Argument order follows sprig, where the value being worked on comes last so that it can be piped
in: `{{ .Message | trunc 80 }}` is `trunc 80 .Message`. Arity is checked when the template is
compiled; argument types are checked per event and fail with a `RenderError`.

Deliberately absent: `now`/`date` (a retried send must render the same bytes), `env`/`expandenv`,
`include`/`tpl`/`template` (no access to anything but the event), `repeat` and friends (output
size). Every function that can grow its input checks the growth against `MAX_VALUE` first.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import NamedTuple

import orjson

from eventpipe.layout.errors import RenderError
from eventpipe.layout.printf import go_quote, sprint, sprintf, sprintln
from eventpipe.layout.values import go_type, text_of

MAX_VALUE = 1 << 20
"""Longest string (characters) a function may build; a bigger result is a RenderError."""


class Func(NamedTuple):
    """A callable with the argument counts it accepts (max None = variadic)."""

    fn: Callable[..., object]
    min_args: int
    max_args: int | None


def _str(value: object, fn: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise RenderError(f"{fn}: expected a string, got {go_type(value)}")


def _int(value: object, fn: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RenderError(f"{fn}: expected an integer, got {go_type(value)}")


def _check_size(size: int, fn: str) -> None:
    if size > MAX_VALUE:
        raise RenderError(f"{fn}: result would exceed {MAX_VALUE} characters")


def to_json(value: object, option: int = 0) -> str:
    """Serialise with orjson (key order kept, no HTML escaping unlike Go's encoding/json)."""
    try:
        return orjson.dumps(value, option=option).decode()
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise RenderError(f"toJson: {exc}") from None


def _default(default: object, *given: object) -> object:
    return given[0] if given and given[0] else default


def _coalesce(*values: object) -> object:
    return next((v for v in values if v), None)


def _title(value: object) -> str:
    out, prev_sep = [], True
    for ch in _str(value, "title"):
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _trunc(n: object, value: object) -> str:
    count, s = _int(n, "trunc"), _str(value, "trunc")
    if count < 0:
        return s[len(s) + count :] if len(s) + count > 0 else s
    return s[:count]


def _replace(old: object, new: object, value: object) -> str:
    o, n, s = _str(old, "replace"), _str(new, "replace"), _str(value, "replace")
    hits = len(s) + 1 if o == "" else s.count(o)
    _check_size(len(s) + hits * (len(n) - len(o)), "replace")
    return s.replace(o, n)


def _indent(n: object, value: object) -> str:
    pad, s = " " * min(max(_int(n, "indent"), 0), MAX_VALUE), _str(value, "indent")
    _check_size(len(s) + len(pad) * (s.count("\n") + 1), "indent")
    return pad + s.replace("\n", "\n" + pad)


def _join(sep: object, value: object) -> str:
    if value is None:
        return ""
    items = value if isinstance(value, list) else [value]
    return _str(sep, "join").join(text_of(v) for v in items if v is not None)


def _index(value: object, *keys: object) -> object:
    for key in keys:
        if value is None:
            return None
        if isinstance(value, dict):
            if not isinstance(key, str):
                raise RenderError(f"index: map key must be a string, got {go_type(key)}")
            value = value.get(key)
        elif isinstance(value, list):
            i = _int(key, "index")
            if not 0 <= i < len(value):
                raise RenderError(f"index: index out of range: {i}")
            value = value[i]
        else:
            raise RenderError(f"index: can't index item of type {go_type(value)}")
    return value


def _len(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))  # Go counts bytes
    if isinstance(value, list | dict):
        return len(value)
    raise RenderError(f"len of type {go_type(value)}")


def _comparable(a: object, b: object, fn: str) -> tuple[object, object]:
    """Check that Go could compare a and b; None (missing) stands for the other's zero value."""
    if a is None or b is None:
        zero = b if a is None else a
        z: object = type(zero)() if isinstance(zero, str | int | float | bool) else None
        a, b = (z, b) if a is None else (a, z)
    if isinstance(a, bool) != isinstance(b, bool):
        raise RenderError(f"{fn}: incompatible types for comparison")
    nums = (int, float)
    if (isinstance(a, nums) and isinstance(b, nums)) or type(a) is type(b):
        if isinstance(a, list | dict):
            raise RenderError(f"{fn}: non-comparable type {go_type(a)}")
        return a, b
    raise RenderError(f"{fn}: incompatible types for comparison")


def _eq(a: object, *others: object) -> bool:
    return any(x == y for x, y in (_comparable(a, b, "eq") for b in others))


def _ne(a: object, b: object) -> bool:
    x, y = _comparable(a, b, "ne")
    return x != y


def _ordered(fn: str, op: Callable[[object, object], bool]) -> Callable[[object, object], bool]:
    def compare(a: object, b: object) -> bool:
        x, y = _comparable(a, b, fn)
        if isinstance(x, bool) or x is None or y is None:
            raise RenderError(f"{fn}: invalid type for comparison")
        return op(x, y)

    return compare


FUNCS: MappingProxyType[str, Func] = MappingProxyType({
    "toJson": Func(to_json, 1, 1),
    "toRawJson": Func(to_json, 1, 1),
    "toPrettyJson": Func(lambda v: to_json(v, orjson.OPT_INDENT_2), 1, 1),
    "toString": Func(text_of, 1, 1),
    "default": Func(_default, 1, 2),
    "empty": Func(lambda v: not v, 1, 1),
    "coalesce": Func(_coalesce, 0, None),
    "ternary": Func(lambda t, f, cond: t if cond else f, 3, 3),
    "upper": Func(lambda v: _str(v, "upper").upper(), 1, 1),
    "lower": Func(lambda v: _str(v, "lower").lower(), 1, 1),
    "title": Func(_title, 1, 1),
    "quote": Func(lambda *vs: " ".join(go_quote(text_of(v)) for v in vs if v is not None), 0, None),
    "squote": Func(lambda *vs: " ".join(f"'{text_of(v)}'" for v in vs if v is not None), 0, None),
    "trim": Func(lambda v: _str(v, "trim").strip(), 1, 1),
    "trimPrefix": Func(lambda p, v: _str(v, "trimPrefix").removeprefix(_str(p, "trim")), 2, 2),
    "trimSuffix": Func(lambda p, v: _str(v, "trimSuffix").removesuffix(_str(p, "trim")), 2, 2),
    "trunc": Func(_trunc, 2, 2),
    "replace": Func(_replace, 3, 3),
    "indent": Func(_indent, 2, 2),
    "nindent": Func(lambda n, v: "\n" + _indent(n, v), 2, 2),
    "contains": Func(lambda sub, v: _str(sub, "contains") in _str(v, "contains"), 2, 2),
    "hasPrefix": Func(lambda p, v: _str(v, "hasPrefix").startswith(_str(p, "hasPrefix")), 2, 2),
    "hasSuffix": Func(lambda p, v: _str(v, "hasSuffix").endswith(_str(p, "hasSuffix")), 2, 2),
    "join": Func(_join, 2, 2),
    "printf": Func(lambda f, *args: sprintf(_str(f, "printf"), args, MAX_VALUE), 1, None),
    "print": Func(lambda *args: sprint(args), 0, None),
    "println": Func(lambda *args: sprintln(args), 0, None),
    "index": Func(_index, 1, None),
    "len": Func(_len, 1, 1),
    "not": Func(lambda v: not v, 1, 1),
    "eq": Func(_eq, 2, None),
    "ne": Func(_ne, 2, 2),
    "lt": Func(_ordered("lt", lambda x, y: x < y), 2, 2),  # type: ignore[operator]
    "le": Func(_ordered("le", lambda x, y: x <= y), 2, 2),  # type: ignore[operator]
    "gt": Func(_ordered("gt", lambda x, y: x > y), 2, 2),  # type: ignore[operator]
    "ge": Func(_ordered("ge", lambda x, y: x >= y), 2, 2),  # type: ignore[operator]
})  # fmt: skip
"""Functions evaluated with all arguments; `and`/`or` short-circuit and live in the compiler."""

EXCLUDED = MappingProxyType({
    "now": "it would make a retried send differ from the first one",
    "date": "dates are rendered with .GetTimestampISO8601 / .GetTimestampMs",
    "env": "templates see only the event", "expandenv": "templates see only the event",
    "include": "templates cannot call templates", "tpl": "templates cannot call templates",
    "call": "templates cannot call Go functions",
})  # fmt: skip
"""Known functions left out on purpose, with the reason the compile error gives."""
