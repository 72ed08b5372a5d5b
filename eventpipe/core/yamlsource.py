"""Read YAML while remembering which line every key came from, and expand ``${ENV}``.

Validation errors from pydantic carry a key path (``('receivers', 0, 'file', 'maxsize')``) but
no line; this module composes the YAML node tree once, records path -> line for every mapping
key and sequence item, and only then constructs plain Python objects. The line table lets
`eventpipe.config.loader` point at the exact line of an unknown key or a wrong value.

``${VAR}`` and ``${VAR:-default}`` are expanded inside string values after parsing (not in the
raw text as resmo does), so a secret containing ``#`` or ``: `` cannot change the YAML
structure, and a reference inside a comment is never evaluated. ``$${`` escapes a literal
``${``. An unset variable without a default is an error naming it and its line.

Aliases (``*name``) share a node, so a few hundred bytes of nested aliases ("billion laughs")
stand for billions of values that validation would build: the walk counts every node it reaches
through aliases and refuses a document that expands to more than `ALIAS_EXPANSION` times the
nodes written in it, before anything is constructed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from eventpipe.core.errors import ConfigError

KeyPath = tuple[str | int, ...]

_STR_TAG = "tag:yaml.org,2002:str"
_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

ALIAS_EXPANSION = 10
"""At most this many nodes, after expanding aliases, per node written in the document (plus
`_EXPANSION_SLACK`): reusing an anchor for a few receivers is far below it, a bomb far above."""
_EXPANSION_SLACK = 10_000


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed config file: plain data plus the line of every key path."""

    data: object
    """The document as plain dicts, lists and scalars (None for an empty file)."""
    lines: Mapping[KeyPath, int]
    """1-based line of each mapping key / sequence item, by key path."""

    def line_of(self, loc: tuple[object, ...]) -> tuple[int | None, KeyPath]:
        """Line of the deepest known prefix of `loc`, and that prefix.

        Elements of `loc` that are not part of the document (pydantic adds some, e.g. for
        dict keys) are skipped rather than ending the walk.
        """
        path: KeyPath = ()
        line: int | None = None
        for element in loc:
            for candidate in (element, str(element)):
                if isinstance(candidate, str | int) and (*path, candidate) in self.lines:
                    path = (*path, candidate)
                    line = self.lines[path]
                    break
        return line, path


def parse_yaml(text: str, *, source: str, environ: Mapping[str, str]) -> YamlDocument:
    """Parse one YAML document, expanding ``${VAR}`` references from `environ`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        if node is not None:
            walker = _Walker(source=source, environ=environ, lines=lines,
                             written=_count_written(node))
            walker.walk(node, ())
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, lines=lines)


class _Walker:
    """One pass over the node tree: record lines, expand env refs, reject duplicate keys."""

    def __init__(self, *, source: str, environ: Mapping[str, str], lines: dict[KeyPath, int],
                 written: int):
        self._source = source
        self._environ = environ
        self._lines = lines
        self._budget = written * ALIAS_EXPANSION + _EXPANSION_SLACK
        self._written = written
        # Aliases share nodes: expand each scalar once, and never loop on a recursive anchor.
        self._expanded: set[int] = set()
        self._active: set[int] = set()

    def walk(self, node: Node, path: KeyPath) -> None:
        if id(node) in self._active:
            return
        self._budget -= 1
        if self._budget < 0:
            raise ConfigError(
                f"YAML aliases expand the document beyond {ALIAS_EXPANSION} times the "
                f"{self._written} nodes written in it (an alias bomb?); write the values out",
                source=self._source, line=node.start_mark.line + 1, path=render_path(path))
        self._active.add(id(node))
        try:
            if isinstance(node, ScalarNode):
                self._expand(node, path)
            elif isinstance(node, MappingNode):
                self._walk_mapping(node, path)
            elif isinstance(node, SequenceNode):
                for index, item in enumerate(node.value):
                    self._lines.setdefault((*path, index), item.start_mark.line + 1)
                    self.walk(item, (*path, index))
        finally:
            self._active.discard(id(node))

    def _walk_mapping(self, node: MappingNode, path: KeyPath) -> None:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                raise ConfigError("mapping keys must be plain strings", source=self._source,
                                  line=line, path=render_path(path))
            key = key_node.value
            if key == "<<":  # merge key: its content lands in this mapping when constructed
                self.walk(value_node, path)
                continue
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (first at line {seen[key]})",
                                  source=self._source, line=line, path=render_path(path))
            seen[key] = line
            self._lines[(*path, key)] = line
            self.walk(value_node, (*path, key))

    def _expand(self, node: ScalarNode, path: KeyPath) -> None:
        if node.tag != _STR_TAG or "${" not in node.value or id(node) in self._expanded:
            return
        self._expanded.add(id(node))

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            value = self._environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise ConfigError(
                        f"environment variable {name!r} is not set "
                        f"(write ${{{name}:-default}} to give a default)",
                        source=self._source, line=node.start_mark.line + 1, path=render_path(path),
                    )
                return default
            return value

        node.value = _ENV_REF.sub(substitute, node.value)


def _count_written(root: Node) -> int:
    """How many distinct nodes the document holds (each alias target counted once)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                stack += (key, value)
        elif isinstance(node, SequenceNode):
            stack += node.value
    return len(seen)


def render_path(path: tuple[object, ...]) -> str:
    """``('receivers', 0, 'file')`` -> ``receivers[0].file``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        elif isinstance(element, str) and element and re.fullmatch(r"[\w-]+", element):
            out += f".{element}" if out else element
        else:
            out += f"[{str(element)!r}]"
    return out


