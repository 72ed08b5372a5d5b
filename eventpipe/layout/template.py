"""Compiled templates and layouts: what sinks hold and call once per event.

A receiver's `layout` is a string (one template) or resmo's nested map/list whose string leaves
are templates. Everything is compiled when the config loads, so a bad template stops startup
with its key path; rendering is then a fixed tree of closures. A render never returns more than
`max_output` characters per template: past that the event is a RenderError (dead letter), since
a layout that blows up one event would otherwise fill a sink or the process memory.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from eventpipe.core.jsonbytes import dumps_kept
from eventpipe.layout.compiler import Compiler
from eventpipe.layout.errors import LayoutError, RenderError
from eventpipe.layout.statements import Stmt

MAX_OUTPUT = 1 << 20
"""Default bound on one template's rendered length (characters)."""

_PY_ERRORS = (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError)


class Template:
    """One compiled Go template; `render(event)` returns the text."""

    __slots__ = ("_blank", "_max", "_run", "reads", "source", "where")

    def __init__(self, source: str, where: str, run: Stmt, slots: int, max_output: int,
                 reads: frozenset[str] = frozenset()) -> None:
        self.source = source
        self.where = where
        self.reads = reads
        """JSON names of the fields the template reads (eventpipe.layout.reads)."""
        self._run = run
        self._blank: list[object] = [None] * (slots - 1)
        self._max = max_output

    def __repr__(self) -> str:
        return f"Template({self.where}={self.source!r})"

    def render(self, event: dict[str, object]) -> str:
        """Render against one event (a plain dict); raises RenderError for this event."""
        try:
            out = self._run(event, [event, *self._blank])
        except RenderError as exc:
            raise RenderError(f"{self.where}: {exc}") from None
        except _PY_ERRORS as exc:  # a gap in our checks; never leak the payload in the message
            raise RenderError(f"{self.where}: {type(exc).__name__} while rendering") from None
        if len(out) > self._max:
            raise RenderError(f"{self.where}: output exceeds {self._max} characters")
        return out


def compile_template(
    source: str, *, where: str = "layout", max_output: int = MAX_OUTPUT
) -> Template:
    """Compile one template; raises LayoutError naming `where`, the line and the column."""
    if not isinstance(source, str):
        raise LayoutError(f"{where}: a template must be a string, got {type(source).__name__}")
    compiler = Compiler(source, where, max_output)
    run = compiler.compile()
    return Template(source, where, run, compiler.slots, max_output, frozenset(compiler.reads))


Render = Callable[[dict[str, object]], object]


class Layout:
    """A compiled layout: the same shape as configured, with every string leaf rendered."""

    __slots__ = ("_render", "_text", "where")

    def __init__(self, render: Render, *, text: bool, where: str) -> None:
        self._render = render
        self._text = text
        self.where = where

    def render(self, event: dict[str, object]) -> object:
        """The layout rendered for one event (str for a string layout, else dict/list)."""
        return self._render(event)

    def render_json(self, event: dict[str, object]) -> bytes:
        """Bytes to send: JSON of `render()`; a string layout's text as UTF-8, unquoted."""
        rendered = self._render(event)
        try:
            if self._text:
                assert isinstance(rendered, str)
                return rendered.encode()
            return dumps_kept(rendered)  # held with its batch until sent
        except (UnicodeEncodeError, orjson.JSONEncodeError) as exc:
            raise RenderError(f"{self.where}: cannot encode output: {type(exc).__name__}") from None


def compile_layout(
    layout: object, *, where: str = "layout", max_output: int = MAX_OUTPUT
) -> Layout:
    """Compile a string layout or resmo's nested map/list of templates (non-strings kept)."""
    return Layout(_build(layout, where, max_output), text=isinstance(layout, str), where=where)


def _build(node: object, where: str, max_output: int) -> Render:
    if isinstance(node, str):
        return compile_template(node, where=where, max_output=max_output).render
    if isinstance(node, dict):
        items = []
        for key, value in node.items():
            if not isinstance(key, str):
                raise LayoutError(f"{where}: layout keys must be strings, got {key!r}")
            path = f"{where}.{key}" if key.isidentifier() else f"{where}[{key!r}]"
            items.append((key, _build(value, path, max_output)))
        return lambda event: {key: render(event) for key, render in items}
    if isinstance(node, list):
        renders = [_build(value, f"{where}[{i}]", max_output) for i, value in enumerate(node)]
        return lambda event: [render(event) for render in renders]
    if node is None or isinstance(node, bool | int | float):
        return lambda event: node
    raise LayoutError(f"{where}: unsupported layout value of type {type(node).__name__}")
