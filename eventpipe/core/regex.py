"""Every regular expression a user writes (route rules, receiver filters, kube-eventer's
`reason`) runs on RE2, the engine of Go's regexp that resmo's and kube-eventer's users wrote
them for: matching takes time linear in the text, whatever the pattern, so no event can stall
the event loop (Python's backtracking `re` takes ~40 s for ``^(a|aa)+$`` against 41 characters).

The syntax is RE2's (Go's): no lookaround, no backreferences, no possessive quantifiers. A
pattern RE2 rejects is a config error at start-up, with RE2's reason.
"""

from __future__ import annotations

from collections.abc import Callable

import re2

Search = Callable[[str], object]
"""A match object when the compiled pattern matches somewhere in the text, else None."""

_SYNTAX_HINT = "RE2 syntax, as Go's regexp: no lookaround, no backreferences"


class RegexError(ValueError):
    """A pattern RE2 does not accept; the message is RE2's reason (and a syntax hint)."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the reason is raised to the caller, not printed to stderr
    options.never_capture = True  # only "does it match" is asked: no submatch bookkeeping
    return options


_OPTIONS = _options()


def _compile(pattern: str) -> re2._Regexp:
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"{reason} ({_SYNTAX_HINT})") from None


def check(pattern: str) -> None:
    """Raise `RegexError` when RE2 does not accept `pattern`."""
    _compile(pattern)


def compile_search(pattern: str) -> Search:
    """The unanchored matcher of `pattern` (Go's regexp.MatchString); raises `RegexError`."""
    search: Search = _compile(pattern).search
    return search


def escape(text: str) -> str:
    """`text` as a pattern matching itself literally."""
    escaped: str = re2.escape(text)
    return escaped
