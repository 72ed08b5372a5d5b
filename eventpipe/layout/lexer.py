"""Split a Go text/template source into text and action tokens.

Go's own lexer is the reference: `{{- ` and ` -}}` trim the white space (space, tab, CR, LF)
next to the action, but only with a space between the dash and the action body (`{{-3}}` is the
number -3); `{{/* ... */}}` is a comment; strings in actions may contain `}}`, so the end of an
action is found by lexing it, never by searching for `}}`. Actions may span lines (Go >= 1.16).
Every token keeps its offset in the source so that errors can say where they are, and whether it
was written right after the previous token (`(x).Field` chains, `(x) .Field` is two arguments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eventpipe.layout.errors import LayoutError, layout_error

_WS = " \t\r\n"
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+"
    r"|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)"
)
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\\"'])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))",
    re.DOTALL,
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme inside an action.

    kinds: "field" (value: tuple of names), "var" (value: (name, tuple of names)), "dot",
    "ident", "string", "number", "bool", "nil", and the punctuation "(", ")", "|", ",", ":=", "=".
    """

    kind: str
    value: object
    pos: int
    glued: bool


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text between actions, already trimmed by neighbouring trim markers."""

    text: str


@dataclass(frozen=True, slots=True)
class Action:
    """The tokens of one `{{ ... }}`; `pos` is the offset of its `{{`."""

    tokens: tuple[Token, ...]
    pos: int


def scan(source: str, where: str) -> list[Text | Action]:
    """Cut `source` into literal text and lexed actions (comments dropped), applying trims."""
    items: list[Text | Action] = []
    i, n, trim_next = 0, len(source), False
    while True:
        j = source.find("{{", i)
        text = source[i : n if j < 0 else j]
        if trim_next:
            text = text.lstrip(_WS)
        k = j + 2
        if j >= 0 and source.startswith("-", k) and k + 1 < n and source[k + 1] in _WS:
            text = text.rstrip(_WS)
            k += 2
        if text:
            items.append(Text(text))
        if j < 0:
            return items
        tokens, i, trim_next = _Lexer(source, where, j).action(k)
        if tokens is not None:
            items.append(Action(tokens, j))


class _Lexer:
    """Lexes one action; `start` is the offset of its `{{` (for "unclosed action")."""

    def __init__(self, source: str, where: str, start: int) -> None:
        self.src, self.where, self.start = source, where, start

    def error(self, pos: int, problem: str) -> LayoutError:
        return layout_error(self.where, self.src, pos, problem)

    def action(self, p: int) -> tuple[tuple[Token, ...] | None, int, bool]:
        """Return (tokens or None for a comment, offset after the action, right-trim flag)."""
        src, n = self.src, len(self.src)
        q = p
        while q < n and src[q] in _WS:
            q += 1
        if src.startswith("/*", q):
            end = src.find("*/", q + 2)
            if end < 0:
                raise self.error(q, "unclosed comment")
            after, trim = self.close(end + 2, "comment ends before closing delimiter")
            return None, after, trim
        tokens: list[Token] = []
        glued = True
        while True:
            if p >= n:
                raise self.error(self.start, "unclosed action")
            c = src[p]
            if c in _WS:
                while p < n and src[p] in _WS:
                    p += 1
                if src.startswith("-}}", p):
                    return tuple(tokens), p + 3, True
                glued = False
                continue
            if src.startswith("}}", p):
                return tuple(tokens), p + 2, False
            tok, p = self.token(p, c, glued)
            tokens.append(tok)
            glued = True

    def close(self, p: int, problem: str) -> tuple[int, bool]:
        src = self.src
        q = p
        while q < len(src) and src[q] in _WS:
            q += 1
        if q > p and src.startswith("-}}", q):
            return q + 3, True
        if src.startswith("}}", q):
            return q + 2, False
        raise self.error(p, problem)

    def token(self, p: int, c: str, glued: bool) -> tuple[Token, int]:
        src = self.src
        nxt = src[p + 1 : p + 2]
        if c in "()|,":
            return Token(c, c, p, glued), p + 1
        if src.startswith(":=", p):
            return Token(":=", ":=", p, glued), p + 2
        if c == "=":
            return Token("=", "=", p, glued), p + 1
        if c == '"':
            return self.quoted(p, glued)
        if c == "`":
            end = src.find("`", p + 1)
            if end < 0:
                raise self.error(p, "unterminated raw quoted string")
            return Token("string", src[p + 1 : end], p, glued), end + 1
        if c == "'":
            raise self.error(p, "character constants are not supported; use a string")
        if c == "$":
            name, q = self.word(p + 1)
            names, q = self.chain(q)
            return Token("var", ("$" + name, names), p, glued), q
        if c == "." and _is_word_start(nxt):
            names, q = self.chain(p)
            return Token("field", names, p, glued), q
        if c.isdigit() or (c in "+-." and (nxt.isdigit() or (nxt == "." and c != "."))):
            return self.number(p, glued)
        if c == ".":
            return Token("dot", None, p, glued), p + 1
        if _is_word_start(c):
            word, q = self.word(p)
            if word in ("true", "false"):
                return Token("bool", word == "true", p, glued), q
            if word == "nil":
                return Token("nil", None, p, glued), q
            return Token("ident", word, p, glued), q
        raise self.error(p, f"unexpected {c!r} in action")

    def word(self, p: int) -> tuple[str, int]:
        q = p
        while q < len(self.src) and (self.src[q].isalnum() or self.src[q] == "_"):
            q += 1
        return self.src[p:q], q

    def chain(self, p: int) -> tuple[tuple[str, ...], int]:
        names: list[str] = []
        while self.src.startswith(".", p) and _is_word_start(self.src[p + 1 : p + 2]):
            name, p = self.word(p + 1)
            names.append(name)
        return tuple(names), p

    def number(self, p: int, glued: bool) -> tuple[Token, int]:
        m = _NUMBER.match(self.src, p)
        end = m.end() if m else p + 1
        if m is None or self.src[end : end + 1].isalnum() or self.src[end : end + 1] in "._":
            raise self.error(p, "bad number syntax")
        text = m.group()
        value: int | float
        try:
            value = int(text, 0)
        except ValueError:
            try:
                digits = text.lstrip("+-")
                octal = len(digits) > 1 and digits[0] == "0" and digits.isdigit()
                value = int(text, 8) if octal else float(text)
            except ValueError:
                raise self.error(p, "bad number syntax") from None
        return Token("number", value, p, glued), end

    def quoted(self, p: int, glued: bool) -> tuple[Token, int]:
        src, q = self.src, p + 1
        while True:
            if q >= len(src) or src[q] == "\n":
                raise self.error(p, "unterminated quoted string")
            if src[q] == "\\":
                q += 2
                continue
            if src[q] == '"':
                break
            q += 1
        try:
            value = _ESCAPE.sub(_unescape, src[p + 1 : q])
        except ValueError as exc:
            raise self.error(p, f"bad escape in string: {exc}") from None
        return Token("string", value, p, glued), q + 1


def _is_word_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _unescape(m: re.Match[str]) -> str:
    simple, hex2, octal, u4, u8, bad = m.groups()
    if simple is not None:
        return _SIMPLE_ESCAPES.get(simple, simple)
    if bad is not None:
        raise ValueError(f"unknown escape \\{bad}")
    code = int(hex2 or u4 or u8, 16) if octal is None else int(octal, 8)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"invalid code point {code:#x}")
    return chr(code)
