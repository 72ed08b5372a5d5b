"""Go's fmt verbs, as far as layouts use them: print, println, printf and %q quoting.

Covered: %v %s %d %q %f %e %g %x %X %t %% with the flags `-+ 0#`, a width and a precision.
A value of the wrong type for its verb prints as Go does (`%!d(string=abc)`), missing and extra
arguments too (`%!s(MISSING)`, `%!(EXTRA ...)`), so a template mistake shows in the output
instead of failing the event. Widths and precisions above 4096 are a RenderError, so that a
format string cannot be used to make huge output. A missing field prints as "" as everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from eventpipe.layout.errors import RenderError
from eventpipe.layout.values import go_float, go_type, text_of

_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])")
_MAX_WIDTH = 4096
_QUOTE_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
}  # fmt: skip


def go_quote(s: str) -> str:
    """Go's strconv.Quote: printable characters kept, the rest escaped."""
    out = ['"']
    for ch in s:
        esc = _QUOTE_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def sprint(args: Sequence[object]) -> str:
    """Go's fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(text_of(arg))
    return "".join(out)


def sprintln(args: Sequence[object]) -> str:
    """Go's fmt.Sprintln: operands separated by spaces, then a newline."""
    return " ".join(text_of(arg) for arg in args) + "\n"


def sprintf(fmt: str, args: Sequence[object], limit: int) -> str:
    """Go's fmt.Sprintf for the verbs listed in the module docstring."""
    out: list[str] = []
    pos = used = size = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, precision, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        w = int(width) if width else 0
        p = None if precision is None else int(precision or "0")
        if w > _MAX_WIDTH or (p or 0) > _MAX_WIDTH:
            raise RenderError(f"printf: width or precision above {_MAX_WIDTH}")
        text = _pad(_one(verb, arg, flags, p), w, flags, verb)
        size += len(text)
        if size > limit:
            raise RenderError(f"printf: result would exceed {limit} characters")
        out.append(text)
    out.append(fmt[pos:])
    if used < len(args):
        extra = ", ".join(f"{go_type(a)}={text_of(a)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb: str, arg: object) -> str:
    return f"%!{verb}({go_type(arg)}={text_of(arg)})"


def _one(verb: str, arg: object, flags: str, p: int | None) -> str:
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb in "vs":
        text = text_of(arg)
        return text[:p] if p is not None and verb == "s" else text
    if verb == "q":
        return go_quote(text_of(arg))
    if verb == "t":
        return ("true" if arg else "false") if isinstance(arg, bool) else _bad(verb, arg)
    if verb == "d":
        if not is_int:
            return _bad(verb, arg)
        return f"{arg:+d}" if "+" in flags else str(arg)
    if verb in "xX":
        if is_int:
            text = f"{arg:x}"
        elif isinstance(arg, str):
            text = arg.encode("utf-8", "surrogatepass").hex()
        else:
            return _bad(verb, arg)
        return text.upper() if verb == "X" else text
    if verb in "feEgG":
        if not (is_int or isinstance(arg, float)):
            return _bad(verb, arg)
        number = float(arg)  # type: ignore[arg-type]
        if verb in "gG" and p is None:
            return go_float(number)
        sign = "+" if "+" in flags else ""
        return format(number, f"{sign}.{6 if p is None else p}{verb}")
    return _bad(verb, arg)


def _pad(text: str, width: int, flags: str, verb: str) -> str:
    if len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and verb in "dfeEgGxX":
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)
