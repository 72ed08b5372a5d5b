"""Compile Go template actions into Python closures, once, at config time.

There is no tree walked per event: every expression becomes a closure `(dot, vars) -> value` and
every statement a closure `(dot, vars) -> str`, so rendering is plain calls and dict lookups.
A pipeline `a | f x` compiles as the call `f x (a)`. Variables get a slot in a per-render list
(slot 0 is `$`, the event), resolved here, so an undefined `$x` is a compile error as in Go.
`and`/`or` evaluate lazily and return an operand, like Go >= 1.18.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventpipe.layout.errors import LayoutError, layout_error
from eventpipe.layout.expressions import (
    and_,
    apply,
    assigning,
    chain,
    const,
    dot,
    or_,
    var,
    var_parts,
)
from eventpipe.layout.funcs import EXCLUDED, FUNCS
from eventpipe.layout.lexer import Action, Text, Token, scan
from eventpipe.layout.statements import (
    Expr,
    Stmt,
    if_stmt,
    print_stmt,
    range_stmt,
    sequence,
    set_stmt,
    with_stmt,
)
from eventpipe.layout.values import json_name

_CONTROL = ("if", "with", "range")
_UNSUPPORTED = ("define", "template", "block", "break", "continue")
_KEYWORDS = frozenset(("else", "end", *_CONTROL, *_UNSUPPORTED))
_STOP = ("|", ")")
WHOLE = "."
"""In `Compiler.reads`: a value read whole (`.`, `$x`: printed, `toJson`, passed on)."""


def _describe(tok: Token) -> str:
    if tok.kind == "field":
        return "." + ".".join(tok.value)  # type: ignore[arg-type]
    return tok.kind if tok.kind in ("string", "number") else repr(tok.value)


class Compiler:
    """Parses one template source; `compile()` returns its body and the number of var slots."""

    def __init__(self, source: str, where: str, max_output: int) -> None:
        self.src, self.where, self.max_output = source, where, max_output
        self.items = scan(source, where)
        self.i = 0
        self.scopes: list[dict[str, int]] = [{"$": 0}]
        self.slots = 1
        self.counter: int | None = None
        self.reads: set[str] = set()
        """JSON names of every field step the template reads; WHOLE for a value read whole."""

    def compile(self) -> Stmt:
        try:
            body, stop = self.parse_list()
        except RecursionError:
            raise LayoutError(f"{self.where}: template is nested too deeply") from None
        if stop is not None:
            raise self.err(stop.pos, f"unexpected {{{{{stop.tokens[0].value}}}}}")
        return sequence(body)

    def err(self, pos: int, problem: str) -> LayoutError:
        return layout_error(self.where, self.src, pos, problem)

    def parse_list(self) -> tuple[list[str | Stmt], Action | None]:
        """Statements up to an `{{else}}`/`{{end}}` (returned) or the end of the source."""
        out: list[str | Stmt] = []
        while self.i < len(self.items):
            item = self.items[self.i]
            self.i += 1
            if isinstance(item, Text):
                out.append(item.text)
                continue
            if not item.tokens:
                raise self.err(item.pos, "missing value for command")
            head = item.tokens[0]
            word = head.value if head.kind == "ident" else None
            if word in ("end", "else"):
                return out, item
            if word in _CONTROL:
                out.append(self.control(str(word), item, 1))
            elif word in _UNSUPPORTED:
                raise self.err(head.pos, f"{{{{{word}}}}} is not supported in eventpipe layouts")
            else:
                out.append(self.action(item))
        return out, None

    def action(self, item: Action) -> Stmt:
        toks = item.tokens
        decl, i = self.declaration(toks, 0, allow_two=False)
        expr, i = self.pipeline(toks, i)
        self.expect_end(toks, i)
        if decl is None:
            return print_stmt(expr)
        return set_stmt(self.bind(decl)[0], expr)

    def control(self, kw: str, item: Action, start: int) -> Stmt:
        toks = item.tokens
        self.scopes.append({})
        try:
            decl, i = self.declaration(toks, start, allow_two=kw == "range")
            if i >= len(toks):
                raise self.err(item.pos, f"missing value for {kw}")
            expr, i = self.pipeline(toks, i)
            self.expect_end(toks, i)
            slots = self.bind(decl) if decl else []
            body, stop = self.parse_list()
            if stop is None:
                raise self.err(item.pos, f"unexpected EOF: missing {{{{end}}}} for {{{{{kw}}}}}")
            else_stmt = self.else_branch(stop)
        finally:
            self.scopes.pop()
        then = sequence(body)
        if kw == "range":
            if self.counter is None:
                self.counter, self.slots = self.slots, self.slots + 1
            key = slots[0] if len(slots) == 2 else None
            elem = slots[-1] if slots else None
            return range_stmt(expr, key, elem, then, else_stmt, self.counter, self.max_output)
        if slots:
            expr = assigning(slots[0], expr)
        return (if_stmt if kw == "if" else with_stmt)(expr, then, else_stmt)

    def else_branch(self, stop: Action) -> Stmt | None:
        st = stop.tokens
        if st[0].value == "end":
            self.expect_end(st, 1)
            return None
        if len(st) > 1:
            if st[1].kind == "ident" and st[1].value in ("if", "with"):
                return self.control(str(st[1].value), stop, 2)  # shares the outer {{end}}
            raise self.err(st[1].pos, f"unexpected {_describe(st[1])} after else")
        body, end = self.parse_list()
        if end is None or end.tokens[0].value != "end":
            raise self.err(stop.pos, "expected {{end}} after {{else}}")
        self.expect_end(end.tokens, 1)
        return sequence(body)

    def expect_end(self, toks: Sequence[Token], i: int) -> None:
        if i < len(toks):
            raise self.err(toks[i].pos, f"unexpected {_describe(toks[i])} in command")

    def declaration(
        self, toks: Sequence[Token], i: int, *, allow_two: bool
    ) -> tuple[tuple[list[tuple[str, int]], bool] | None, int]:
        """`$x :=` / `$x =` / (range only) `$i, $e :=`: returns ((names, is_new), next index)."""
        kinds = [t.kind for t in toks[i : i + 4]]
        names: list[tuple[str, int]] = []
        if kinds[:2] in (["var", ":="], ["var", "="]):
            names, op = [self.bare_var(toks[i])], toks[i + 1]
        elif allow_two and kinds in (["var", ",", "var", ":="], ["var", ",", "var", "="]):
            names, op = [self.bare_var(toks[i]), self.bare_var(toks[i + 2])], toks[i + 3]
        else:
            return None, i
        return (names, op.kind == ":="), i + len(names) * 2

    def bare_var(self, tok: Token) -> tuple[str, int]:
        name, chain = var_parts(tok)
        if chain:
            raise self.err(tok.pos, "can only declare or assign a plain variable")
        return str(name), tok.pos

    def bind(self, decl: tuple[list[tuple[str, int]], bool]) -> list[int]:
        names, is_new = decl
        if not is_new:
            return [self.lookup(name, pos) for name, pos in names]
        slots = []
        for name, _pos in names:
            self.scopes[-1][name] = self.slots
            slots.append(self.slots)
            self.slots += 1
        return slots

    def lookup(self, name: str, pos: int) -> int:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise self.err(pos, f"undefined variable {name}")

    def pipeline(self, toks: Sequence[Token], i: int) -> tuple[Expr, int]:
        expr: Expr | None = None
        while True:
            if i >= len(toks) or toks[i].kind in _STOP:
                pos = toks[i].pos if i < len(toks) else (toks[-1].pos if toks else 0)
                raise self.err(pos, "missing value for command")
            expr, i = self.command(toks, i, expr)
            if i >= len(toks) or toks[i].kind != "|":
                return expr, i
            i += 1

    def command(self, toks: Sequence[Token], i: int, piped: Expr | None) -> tuple[Expr, int]:
        first = toks[i]
        if first.kind == "ident" and first.value not in _KEYWORDS:
            args: list[Expr] = []
            i += 1
            while i < len(toks) and toks[i].kind not in _STOP:
                arg, i = self.operand(toks, i)
                args.append(arg)
            if piped is not None:
                args.append(piped)
            return self.call(str(first.value), args, first.pos), i
        expr, i = self.operand(toks, i)
        if piped is not None or (i < len(toks) and toks[i].kind not in _STOP):
            raise self.err(first.pos, f"can't give argument to non-function {_describe(first)}")
        return expr, i

    def operand(self, toks: Sequence[Token], i: int) -> tuple[Expr, int]:
        t = toks[i]
        if t.kind in ("string", "number", "bool", "nil"):
            return const(t.value), i + 1
        if t.kind == "dot":
            self.reads.add(WHOLE)
            return dot, i + 1
        if t.kind == "field":
            self._read(t.value)  # type: ignore[arg-type]
            return chain(dot, t.value), i + 1  # type: ignore[arg-type]
        if t.kind == "var":
            name, names = var_parts(t)
            self._read(names)
            return chain(var(self.lookup(name, t.pos)), names), i + 1
        if t.kind == "(":
            expr, j = self.pipeline(toks, i + 1)
            if j >= len(toks) or toks[j].kind != ")":
                raise self.err(t.pos, "unclosed left paren")
            j += 1
            if j < len(toks) and toks[j].kind == "field" and toks[j].glued:
                self._read(toks[j].value)  # type: ignore[arg-type]
                return chain(expr, toks[j].value), j + 1  # type: ignore[arg-type]
            return expr, j
        if t.kind == "ident" and t.value not in _KEYWORDS:
            return self.call(str(t.value), [], t.pos), i + 1
        raise self.err(t.pos, f"unexpected {_describe(t)} in operand")

    def _read(self, names: Sequence[str]) -> None:
        """Note a chain's steps; one without steps (`$x`) passes a value on whole."""
        if names:
            self.reads.update(json_name(n) for n in names)
        else:
            self.reads.add(WHOLE)

    def call(self, name: str, args: list[Expr], pos: int) -> Expr:
        if name in ("and", "or"):
            if not args:
                raise self.err(pos, f"wrong number of args for {name}: want at least 1 got 0")
            return and_(args) if name == "and" else or_(args)
        spec = FUNCS.get(name)
        if spec is None:
            reason = EXCLUDED.get(name)
            if reason is not None:
                raise self.err(pos, f"function {name!r} is not supported: {reason}")
            raise self.err(pos, f"function {name!r} not defined")
        n, low, high = len(args), spec.min_args, spec.max_args
        if n < low or (high is not None and n > high):
            want = str(low) if low == high else f"{low}..{'' if high is None else high}"
            raise self.err(pos, f"wrong number of args for {name}: want {want} got {n}")
        return apply(spec.fn, args)
