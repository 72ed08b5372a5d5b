"""How often an Event happened, read the same way for core/v1 and events.k8s.io/v1.

The watch indexes it in the spool (the count delta of each version comes from it); IM sinks
show it as the message's count.
"""

from __future__ import annotations

from typing import Any


def occurrences(obj: dict[str, Any]) -> int:
    """How many times the event happened: series.count → count / deprecatedCount → 1."""
    series = obj.get("series")
    if isinstance(series, dict):
        count = series.get("count")
        if isinstance(count, int) and count > 0:
            return count
    for key in ("count", "deprecatedCount"):
        count = obj.get(key)
        if isinstance(count, int) and count > 0:
            return count
    return 1
