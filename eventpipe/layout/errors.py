"""The two ways a layout fails, kept apart because they are handled apart.

A `LayoutError` is found once, when the configuration is loaded, and stops startup with a message
that names the template (its key path in the config) and the line and column of the problem.
A `RenderError` is about one event that a valid template cannot render (say `index` past the end
of a list); the sink worker dead-letters that event and moves on, so it is never retriable. Its
message says why, and never carries the event payload.
"""

from __future__ import annotations

_SNIPPET = 40


class LayoutError(ValueError):
    """A template does not compile or uses a construct outside the supported subset."""


class RenderError(Exception):
    """This event cannot be rendered by this (valid) template."""

    retriable = False
    """Rendering the same event again gives the same error: dead-letter it, do not retry."""


def layout_error(where: str, source: str, pos: int, problem: str) -> LayoutError:
    """Build a `LayoutError` that points at `pos` (an offset into `source`) by line and column."""
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    snippet = source[pos : pos + _SNIPPET].split("\n", 1)[0]
    return LayoutError(f"{where}: {problem} (line {line}, column {column}, at {snippet!r})")
