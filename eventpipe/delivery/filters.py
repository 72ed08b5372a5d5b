"""kube-eventer's per-receiver filters, compiled once into a check on spool rows.

The route tree decides which receivers an event goes to; `filters:` on a receiver narrows that
further the way kube-eventer's sink filters do, so configs written for it carry over:

- `level: Warning` passes only Warning events; `level: Normal` passes every event (in
  kube-eventer Normal is the lowest level, so "Normal and above" is everything);
- `namespaces` and `kinds`: exact names, any of them;
- `reasons`: regexes (RE2), unanchored like route rules, any of them.

Every condition reads a column of the spool row (namespace, kind, reason and type are stored
with the events.k8s.io fallbacks already applied), so filtering parses no JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from eventpipe.core import regex
from eventpipe.delivery.config import FiltersConfig
from eventpipe.spool.rows import StoredRow

RowCheck = Callable[[StoredRow], bool]
"""True when the row passes."""


class EventFilter:
    """The compiled `filters:` of one receiver; call it with a spool row."""

    __slots__ = ("_kinds", "_namespaces", "_reasons", "_warning_only")

    def __init__(self, cfg: FiltersConfig, *, receiver: str) -> None:
        self._warning_only = cfg.level == "Warning"
        self._namespaces = frozenset(cfg.namespaces)
        self._kinds = frozenset(cfg.kinds)
        reasons = []
        for index, pattern in enumerate(cfg.reasons):
            try:
                reasons.append(regex.compile_search(pattern))
            except regex.RegexError as exc:  # the config model checks each; this is the backstop
                raise ValueError(f"receivers.{receiver}.filters.reasons[{index}]: invalid "
                                 f"regular expression {pattern!r}: {exc}") from None
        self._reasons = tuple(reasons)

    def __call__(self, row: StoredRow) -> bool:
        """True when the event passes every configured condition."""
        if self._warning_only and row.type != "Warning":
            return False
        if self._namespaces and row.namespace not in self._namespaces:
            return False
        if self._kinds and row.kind not in self._kinds:
            return False
        if self._reasons:
            reason = row.reason
            return any(search(reason) for search in self._reasons)
        return True


def compile_filters(cfg: FiltersConfig | None, *, receiver: str) -> RowCheck | None:
    """The row check for a receiver's `filters:`, or None when it sets no condition."""
    if cfg is None:
        return None
    if not (cfg.level == "Warning" or cfg.namespaces or cfg.kinds or cfg.reasons):
        return None
    return EventFilter(cfg, receiver=receiver)
