"""Durations and byte sizes as people write them in YAML.

Config keys holding a time accept ``"50ms"``, ``"30s"``, ``"5m"``, ``"2h"``, ``"7d"``,
compounds like ``"1h30m"`` (Go's time.ParseDuration style, which resmo users know) and bare
numbers meaning seconds; they are stored as float seconds. Sizes accept integers (bytes) and
Kubernetes-style quantities: ``"500MB"``/``"500M"`` are decimal, ``"2Gi"``/``"2GiB"`` binary.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"[+]?(\d+(?:\.\d*)?|\.\d+)")

_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtpe]?)(i?)(b?)", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def parse_duration(value: str | int | float) -> float:
    """Return `value` in seconds.

    Accepts numbers (seconds) and strings like ``"50ms"``, ``"30s"``, ``"5m"``, ``"2h"``,
    ``"7d"``, ``"1h30m"`` or ``"90"``. Negative or malformed values raise ValueError.
    """
    # bool is an int subclass; `timeout: true` is a mistake, not one second.
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s', got {value!r}")
    if isinstance(value, int | float):
        if value < 0 or value != value:
            raise ValueError(f"duration must be a non-negative number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as '30s', got {value!r}")
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    pos = 0
    total = 0.0
    for part in _DURATION_PART.finditer(text):
        if part.start() != pos:
            break
        total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        pos = part.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"expected a duration such as '50ms', '30s', '5m', '2h', '7d' or '1h30m', got {value!r}"
        )
    return total


def parse_size(value: str | int | float) -> int:
    """Return `value` in bytes: an integer, or ``"500MB"``, ``"500M"``, ``"2Gi"``, ``"1GiB"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as '2Gi' or '500MB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must be non-negative, got {value!r}")
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as '2Gi' or '500MB', got {value!r}")
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"expected a size such as '2Gi', '500MB' or a byte count, got {value!r}")
    number, prefix, binary, _ = match.groups()
    if binary and not prefix:
        raise ValueError(f"expected a size such as '2Gi' or '500MB', got {value!r}")
    base = 1024 if binary else 1000
    return int(float(number) * base ** _SIZE_POWERS[prefix.lower()])


def _duration(value: object) -> object:
    # Leave other types for pydantic to reject with its own message.
    if isinstance(value, str | int | float):
        return parse_duration(value)
    return value


def _size(value: object) -> object:
    if isinstance(value, str | int | float):
        return parse_size(value)
    return value


Duration = Annotated[float, BeforeValidator(_duration, json_schema_input_type=str | float)]
"""A config field holding a duration; stored as float seconds."""

ByteSize = Annotated[int, BeforeValidator(_size, json_schema_input_type=str | int)]
"""A config field holding a size; stored as int bytes."""
