"""What kube-eventer's `--sink` flags share: the mapped flag, its error, its query options.

`Options` hands out a flag's query options and remembers which were read, so an option nobody
read is an error naming it; the common filters (`level`, `namespaces`, `kinds`, `reasons`,
webhook's regex `reason`) become route rule fields here, as kube-eventer applies them: exact
names (anchored regexes), `level=Normal` meaning Normal and Warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventpipe.core import regex

_LEVELS = {"Warning": "^Warning$", "Normal": "^(?:Normal|Warning)$"}
_IGNORED: Mapping[str, frozenset[str]] = {
    "kafka": frozenset({"timeseriestopic"}),
    "elasticsearch": frozenset({"sniff", "healthCheck", "startupHealthcheckTimeout",
                                "bulkWorkers", "maxRetries"}),
}
"""Options accepted with no effect: kube-eventer ignores them too (timeseriestopic is for
heapster's metrics), or eventpipe always does what they ask for or cannot (no sniffing, one
bulk request at a time, retry until delivered)."""


class SinkFlagError(ValueError):
    """A --sink flag eventpipe cannot map; the message names the sink, option and the fix."""


@dataclass(frozen=True)
class SinkFlag:
    """One --sink flag, mapped: the receiver's sink entry and the route rules to reach it."""

    kind: str
    """kube-eventer's sink name (`dingtalk`, `webhook`, ...)."""
    label: str
    """How messages name this flag: `--sink #2 (dingtalk)` (never the URL: it holds tokens)."""
    sink: dict[str, Any]
    """The receiver entry without its name: `{"dingtalk": {...}}`."""
    match: dict[str, str] = field(default_factory=dict)
    """Route rule conditions (regexes) the receiver's events must meet."""
    drop: dict[str, str] = field(default_factory=dict)
    """Conditions of events to leave out (dingtalk's exclude_reasons); empty = none."""
    configmap: tuple[str, str] | None = None
    """(namespace, name) of a ConfigMap whose `content` is the webhook body, still to read."""


class Options:
    """The query options of one flag; remembers which were used so leftovers are errors."""

    def __init__(self, label: str, kind: str, opts: dict[str, list[str]],
                 read_file: Callable[[str], str]) -> None:
        self.label, self.kind, self.opts = label, kind, opts
        self.read_file = read_file
        """Reads a local file named by an option (webhook's custom_body_file)."""
        self.used: set[str] = set(_IGNORED.get(kind, ()))

    def error(self, key: str, what: str) -> SinkFlagError:
        """An error naming this flag and option `key`."""
        return SinkFlagError(f"{self.label}: option {key!r}: {what}")

    def all(self, key: str) -> list[str]:
        """Every value given for `key` (marks it used)."""
        self.used.add(key)
        return self.opts.get(key, [])

    def one(self, key: str, default: str = "") -> str:
        """The first value of `key`, else `default` (kube-eventer reads only the first)."""
        values = self.all(key)
        return values[0] if values else default

    def items(self, key: str) -> list[str]:
        """Comma-separated values of every occurrence; empty = no filter (kube-eventer)."""
        return [v for value in self.all(key) for v in value.split(",") if v]

    def flag(self, key: str) -> bool:
        """`key` as a boolean (true/false/1/0; absent = false)."""
        value = self.one(key, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value in ("true", "1")

    def filters(self) -> dict[str, str]:
        """The route rule of the common filters; dingtalk and wechat default to Warning."""
        rule: dict[str, str] = {}
        default = "Warning" if self.kind in ("dingtalk", "wechat") else ""
        level = self.one("level", default)
        if level:
            if level not in _LEVELS:
                raise self.error("level", f"expected Warning or Normal, got {level!r}")
            rule["type"] = _LEVELS[level]
        for key, target in (("namespaces", "namespace"), ("kinds", "kind"), ("reasons", "reason")):
            if values := self.items(key):
                rule[target] = anchored(values)
        if patterns := self.items("reason"):  # kube-eventer's webhook: unanchored regexes
            if "reason" in rule:
                raise self.error("reason", "give either reason (regexes) or reasons (names)")
            rule["reason"] = "|".join(f"(?:{p})" for p in patterns)
        return rule

    def check_all_used(self) -> None:
        """Raise for the first option no mapper read."""
        for key in self.opts:
            if key not in self.used:
                raise self.error(key, f"not a {self.kind} option eventpipe knows; remove it "
                                      "(see docs/migrating.md, 'From kube-eventer')")


def anchored(values: Sequence[str]) -> str:
    """A regex matching exactly one of `values`."""
    return "^(?:" + "|".join(regex.escape(v) for v in values) + ")$"
