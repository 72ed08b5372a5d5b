"""Load a config file: read, expand ``${ENV}``, parse, validate, and explain what is wrong.

pydantic reports errors as a key path and a terse message; this module turns each into
``file:line: path: message`` using the line table from `eventpipe.core.yamlsource`, with
wording a person editing YAML understands ("expected an integer, got 'big'").

A file larger than `MAX_CONFIG_BYTES` and a file with nothing in it (empty, or only comments)
are errors: the first is not a config, the second is almost always a ConfigMap key or a mount
that went wrong, and running with no receivers would hide it. Each receiver is built once after
validation (its layouts and templates compile), and a problem there names its line too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from eventpipe.config.models import Config, validate_config
from eventpipe.core.errors import ConfigError
from eventpipe.core.yamlsource import YamlDocument, parse_yaml, render_path

_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}

MAX_CONFIG_BYTES = 1024 * 1024
"""The largest config file read (1 MiB); real configs, layouts included, are a few KiB."""

_BOUNDS = {
    "greater_than_equal": "at least",
    "greater_than": "greater than",
    "less_than_equal": "at most",
    "less_than": "less than",
}


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path`; raise `ConfigError` saying where it is wrong."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", source=source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config is not UTF-8: {exc.reason}", source=source) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file is larger than {MAX_CONFIG_BYTES // 1024} KiB, the "
                          "most eventpipe reads: is this the right file?", source=source)
    return load_config_text(text, source=Path(path).name, environ=environ)


def load_config_text(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate config YAML given as text; `source` names it in error messages.

    `environ` supplies ``${VAR}`` values (default: the process environment).
    """
    document = parse_yaml(text, source=source, environ=os.environ if environ is None else environ)
    if document.data is None:
        raise ConfigError("the config file is empty (or only comments): give at least the "
                          "receivers and the route (docs/configuration.md)", source=source)
    data = document.data
    if not isinstance(data, dict):
        raise ConfigError("the config must be a YAML mapping of keys", source=source, line=1)
    try:
        config = validate_config(data)
    except ValidationError as exc:
        raise _to_config_error(exc, document, source) from None
    check_receivers(config, document, source)
    return config


def check_receivers(config: Config, document: YamlDocument | None, source: str) -> None:
    """Build each receiver's sink once (layouts and templates compile); raise `ConfigError`
    at the line of the key the sink's error names (``receivers.NAME.layout.msg: ...``), else at
    the receiver's line."""
    from eventpipe.sinks.registry import build_sink

    for index, receiver in enumerate(config.receivers):
        try:
            build_sink(receiver, cluster_name=config.cluster_name)
        except ValueError as exc:
            where, _, problem = str(exc).partition(": ")
            loc: tuple[str | int, ...] = ("receivers", index, receiver.sink_type)
            prefix = f"receivers.{receiver.name}"
            if problem and (where == prefix or where.startswith(prefix + ".")):
                loc += tuple(_dotted(where.removeprefix(prefix)))
            else:
                where, problem = prefix, str(exc)
            line, _ = document.line_of(loc) if document else (None, ())
            raise ConfigError(problem, source=source, line=line, path=where) from None


def _dotted(path: str) -> list[str | int]:
    """``.layout.a[2].b`` -> ``['layout', 'a', 2, 'b']``."""
    parts: list[str | int] = []
    for piece in path.replace("[", ".[").split("."):
        if piece.startswith("[") and piece.endswith("]") and piece[1:-1].isdigit():
            parts.append(int(piece[1:-1]))
        elif piece:
            parts.append(piece)
    return parts


def _to_config_error(exc: ValidationError, document: YamlDocument, source: str) -> ConfigError:
    located = sorted(
        (_locate(error, document) for error in exc.errors(include_url=False)),
        key=lambda item: (item[0] is None, item[0] or 0),
    )
    line, path, message = located[0]
    more = [
        f"{source}:{ln}: {p + ': ' if p else ''}{msg}" if ln else f"{source}: {p}: {msg}"
        for ln, p, msg in located[1:]
    ]
    return ConfigError(message, source=source, line=line, path=path, more=more)


def _locate(error: Any, document: YamlDocument) -> tuple[int | None, str, str]:
    """Return (line, rendered key path, message) for one pydantic error."""
    loc: tuple[Any, ...] = tuple(error["loc"])
    ctx: dict[str, Any] = error.get("ctx") or {}
    kind: str = error["type"]
    value = error.get("input")
    if kind in ("extra_forbidden", "missing"):
        key = loc[-1]
        line, _ = document.line_of(loc)
        path = render_path(loc[:-1])
        message = f"unknown key {key!r}" if kind == "extra_forbidden" else f"missing key {key!r}"
        return line, path, message
    # Our own errors may point below where they were raised (ctx["at"]), e.g. at the sink
    # key of a receiver or at one label of a rule.
    at = tuple(ctx.get("at", ()))
    line, _ = document.line_of(loc + at)
    path = render_path(loc + at)
    if kind.startswith("sink_") and len(loc) == 2 and isinstance(value, dict):
        name = value.get("name")
        path = render_path(loc) + (f" {name!r}" if isinstance(name, str) else "")
    if kind in _EXPECTED:
        message = f"{_EXPECTED[kind]}, got {_show(value)}"
    elif kind == "literal_error":
        message = f"expected {ctx.get('expected', 'one of the allowed values')}, got {_show(value)}"
    elif kind in _BOUNDS:
        message = f"must be {_BOUNDS[kind]} {next(iter(ctx.values()), '')}, got {_show(value)}"
    elif kind == "string_pattern_mismatch":
        message = f"must match the pattern {ctx.get('pattern')}, got {_show(value)}"
    elif kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    elif kind.startswith(("sink_", "regex", "duplicate_", "unknown_")):
        message = str(error["msg"])
    else:
        message = f"{error['msg']}, got {_show(value)}"
    return line, path, message


def _show(value: object) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
