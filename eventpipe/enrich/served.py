"""The involved-object reference read from an Event's served bytes, without parsing the Event.

A receiver that writes the served bytes (the file and stdout receivers without a layout or
deDot, a webhook without a layout) needs from the Event only its reference, to look the object
up and to splice what enrichment adds into the bytes (eventpipe.enrich.apply,
eventpipe.sinks.encoding). Parsing the whole Event for that costs more than the rest of
enrichment together (its `managedFields` alone are most of it); the reference is a small flat
object, found by its key and parsed on its own.

`served_reference` answers only where the answer is the one parsing the whole Event would give,
and None otherwise (the caller then parses):

- The key, with its colon and brace (`"involvedObject":{`, compact, as kube-apiserver serves
  it), must occur exactly once, right after a `{` or a `,`. Such a byte sequence cannot be
  inside a JSON string (its second quote would be escaped); only the tail of another key that
  holds an escaped quote (`"a\"involvedObject":{`) ends the same way, and there a backslash
  comes before it. In an Event as the API serves it only the top level has an `involvedObject`
  or `regarding` key: the Event types have a fixed schema and no nested object of theirs has
  a field of that name.
- `regarding` (events.k8s.io/v1) is taken only when `"involvedObject"` does not occur at all,
  since the parsed path prefers an `involvedObject` that is an object.
- The reference ends at the first `}` after its start at which its text parses as a JSON
  object: a `}` inside a string (a fieldPath such as `spec.containers{app}`) leaves the
  string unterminated and does not parse, and a `}` closing a nested value leaves the outer
  object open. So the first prefix that parses is the reference itself.
"""

from __future__ import annotations

from typing import Any

import orjson

_INVOLVED = b'"involvedObject":{'
_REGARDING = b'"regarding":{'
_INVOLVED_KEY = b'"involvedObject"'
SECTION_KEYS = {"involvedObject": _INVOLVED, "regarding": _REGARDING}
"""Each reference section's key as the API serves it, with its colon and brace."""
_CLOSE = b"}"
_CLOSE_BYTE = ord("}")
_BEFORE_KEY = frozenset(b"{,")
_MAX_CANDIDATES = 8
"""Closing braces tried before giving up (a reference's strings rarely hold even one)."""


ServedReference = tuple[str, int, dict[str, Any]]
"""Where an Event's reference sits in its served bytes: (section, `involvedObject` or
`regarding`; the offset just after the reference's opening brace, where added keys go; the
reference parsed). A plain tuple: one is built per event."""


def served_reference(body: bytes) -> ServedReference | None:
    """The reference of the Event `body`, read without parsing the Event; None when only the
    parse can tell (see the module docstring)."""
    found = _section(body)
    if found is None:
        return None
    section, at = found
    end = at
    for _ in range(_MAX_CANDIDATES):
        end = body.find(_CLOSE, end)
        if end < 0:
            return None
        end += 1
        try:  # not contextlib.suppress: this runs per event
            ref = orjson.loads(body[at - 1:end])
        except orjson.JSONDecodeError:
            continue
        return (section, at, ref) if type(ref) is dict else None
    return None


def _section(body: bytes) -> tuple[str, int] | None:
    """(section, offset after its opening brace) when its key occurs exactly once."""
    start = body.find(_INVOLVED)
    if start >= 0:
        section, key = "involvedObject", _INVOLVED
    elif _INVOLVED_KEY in body:
        return None  # `"involvedObject": {` (spaces) or a value that is not an object
    else:
        start = body.find(_REGARDING)
        if start < 0:
            return None
        section, key = "regarding", _REGARDING
    at = once_after(body, key, start)
    return None if at is None else (section, at)


def section_end(body: bytes, section: str) -> int | None:
    """The offset just after the opening brace of `section` (`involvedObject` or
    `regarding`) in `body`, when its key occurs once as a key (see the module docstring)."""
    key = SECTION_KEYS.get(section)
    return None if key is None else once_after(body, key)


def once_after(body: bytes, key: bytes, start: int | None = None) -> int | None:
    """The offset just after `key` in `body` when it occurs exactly once, and as a key: right
    after a `{` or a `,` (the tail of a longer key comes after a backslash); else None
    (`start`: where it was already found)."""
    if start is None:
        start = body.find(key)
        if start < 0:
            return None
    if start == 0 or body[start - 1] not in _BEFORE_KEY:
        return None
    at = start + len(key)
    return None if body.find(key, at) >= 0 else at


def splice_at(body: bytes, at: int, members: bytes) -> bytes:
    """`body` with `members` (JSON object members, `"k":v,...`, without braces) inserted at
    offset `at`, just after an object's opening brace (before the members it has, if any)."""
    if body[at] == _CLOSE_BYTE:
        return b"".join((body[:at], members, body[at:]))
    return b"".join((body[:at], members, b",", body[at:]))
