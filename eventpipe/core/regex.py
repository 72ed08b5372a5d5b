"""Every regular expression a user writes (route rules, receiver filters, kube-eventer's
`reason`) runs on RE2, the engine of Go's regexp that resmo's and kube-eventer's users wrote
them for: matching takes time linear in the text, whatever the pattern, so no event can stall
the event loop (Python's backtracking `re` takes ~40 s for ``^(a|aa)+$`` against 41 characters).

The syntax is RE2's (Go's): no lookaround, no backreferences, no possessive quantifiers. A
pattern RE2 rejects is a config error at start-up, with RE2's reason.

Matching runs per event on the hot path, so it calls the binding (`re2._re2`) directly: the
package's `re`-like wrapper builds a match object and maps byte offsets back to characters on
every call, ~4x the cost of the match itself. Answers for short texts (reasons, kinds,
namespaces: few distinct values) are remembered, a bounded number of them.

RE2 (~2.4 MiB resident: the library and its bindings) is imported with the first pattern, so a
config whose rules name receivers only (the chart's default) never loads it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import re2
    from re2 import _re2

Search = Callable[[str], bool]
"""True when the compiled pattern matches somewhere in the text (unanchored)."""

_SYNTAX_HINT = "RE2 syntax, as Go's regexp: no lookaround, no backreferences"


class RegexError(ValueError):
    """A pattern RE2 does not accept; the message is RE2's reason (and a syntax hint)."""


@functools.cache
def _options() -> re2.Options:
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason is raised to the caller, not printed to stderr
    options.never_capture = True  # only "does it match" is asked: no submatch bookkeeping
    return options


MEMO_MAX_TEXT = 64
"""Texts up to this many characters have their answer remembered."""
MEMO_MAX_ENTRIES = 1024
"""Remembered answers per pattern; the memo starts over when it is full."""


def _program(pattern: str) -> _re2.RE2:
    from re2 import _re2

    program = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), _options())
    if not program.ok():
        reason = program.error()
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"{reason} ({_SYNTAX_HINT})")
    return program


def check(pattern: str) -> None:
    """Raise `RegexError` when RE2 does not accept `pattern`."""
    _program(pattern)


def compile_search(pattern: str) -> Search:
    """The unanchored matcher of `pattern` (Go's regexp.MatchString); raises `RegexError`."""
    program = _program(pattern)
    match, unanchored = program.Match, type(program).Anchor.UNANCHORED
    memo: dict[str, bool] = {}

    def search(text: str) -> bool:
        found = memo.get(text)
        if found is None:
            data = text.encode("utf-8", "surrogatepass")
            found = match(unanchored, data, 0, len(data))[0][0] >= 0
            if len(text) <= MEMO_MAX_TEXT:
                if len(memo) >= MEMO_MAX_ENTRIES:
                    memo.clear()
                memo[text] = found
        return found

    return search


def escape(text: str) -> str:
    """`text` as a pattern matching itself literally."""
    import re2

    escaped: str = re2.escape(text)
    return escaped
