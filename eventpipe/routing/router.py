"""Compile a route tree once into closures; decide per event which receivers get it.

Semantics are resmoio/kubernetes-event-exporter's (pkg/exporter/route.go, rule.go):

- a route first runs its ``drop`` rules: any match stops this route and its sub-routes;
- every ``match`` rule that matches and names a receiver sends the event there (fan-out);
- sub-``routes`` run only when *all* match rules matched (no match rules = all matched);
- a rule matches when every non-empty condition holds; regexes are RE2 (linear time, Go's
  syntax) and unanchored, like Go's regexp.MatchString; ``labels``/``annotations`` keys must
  exist on the involved object; ``minCount`` compares against the event's count.

Hot path: `Router.receivers_for` runs per event. Receivers are bits of an int; the tree is
evaluated into a mask and the mask's frozenset is built once and reused afterwards, so an
event costs its dict lookups and regex searches and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventpipe.core import regex
from eventpipe.core.errors import ConfigError
from eventpipe.core.yamlsource import render_path
from eventpipe.routing import fields
from eventpipe.routing.config import RouteConfig, RuleConfig
from eventpipe.routing.fields import Event

Predicate = Callable[[Event], bool]
RouteFn = Callable[[Event], int]
Loc = tuple[str | int, ...]


class Router:
    """A compiled route tree. Create with `compile_route`."""

    __slots__ = ("_by_mask", "_names", "_root", "needs_event", "receivers", "static_receivers")

    def __init__(self, root: RouteFn, names: Sequence[str], *, needs_event: bool,
                 reachable: frozenset[str]) -> None:
        self._root = root
        self._names = tuple(names)
        self._by_mask: dict[int, frozenset[str]] = {0: frozenset()}
        self.needs_event: bool = needs_event
        """False when no rule has a condition: every event goes to `static_receivers`."""
        self.receivers: frozenset[str] = reachable
        """Receivers of match rules in live routes (not behind a drop rule that drops all)."""
        self.static_receivers: frozenset[str] = (
            frozenset() if needs_event else self._set(root(fields.EMPTY_EVENT))
        )
        """The receivers of every event; meaningful only when `needs_event` is False."""

    def receivers_for(self, event: Event) -> frozenset[str]:
        """The receivers `event` is routed to (the same frozenset object for equal results)."""
        if not self.needs_event:
            return self.static_receivers
        mask = self._root(event)
        found = self._by_mask.get(mask)
        return found if found is not None else self._set(mask)

    def _set(self, mask: int) -> frozenset[str]:
        result = self._by_mask.get(mask)
        if result is None:
            result = frozenset(n for i, n in enumerate(self._names) if mask >> i & 1)
            self._by_mask[mask] = result
        return result


def compile_route(route: RouteConfig) -> Router:
    """Compile `route` (regexes once); raise `ConfigError` for a regex that does not compile."""
    compiler = _Compiler()
    root = compiler.route(route, ("route",), alive=True)
    return Router(root, compiler.names, needs_event=compiler.has_conditions,
                  reachable=frozenset(compiler.reachable))


class _Compiler:
    """One pass over the tree: assigns receiver bits, builds closures, notes conditions."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.bits: dict[str, int] = {}
        self.reachable: set[str] = set()
        self.has_conditions = False

    def bit(self, receiver: str) -> int:
        if receiver not in self.bits:
            self.bits[receiver] = 1 << len(self.names)
            self.names.append(receiver)
        return self.bits[receiver]

    def route(self, route: RouteConfig, loc: Loc, *, alive: bool) -> RouteFn:
        drops = [self.rule(r, (*loc, "drop", i)) for i, r in enumerate(route.drop)]
        # An unconditional drop rule drops everything: nothing below it is reachable.
        alive = alive and None not in drops
        drop_preds = tuple(p for p in drops if p is not None)
        static_mask = 0  # receivers of match rules without conditions
        conditional: list[tuple[Predicate, int]] = []
        for i, rule in enumerate(route.match):
            pred = self.rule(rule, (*loc, "match", i))
            bit = self.bit(rule.receiver) if rule.receiver else 0
            if rule.receiver and alive:
                self.reachable.add(rule.receiver)
            if pred is None:
                static_mask |= bit
            else:
                conditional.append((pred, bit))
        subs = tuple(self.route(r, (*loc, "routes", i), alive=alive)
                     for i, r in enumerate(route.routes))
        if not alive:
            return _nothing
        matches = tuple(conditional)

        def run(event: Event) -> int:
            for drop in drop_preds:
                if drop(event):
                    return 0
            mask = static_mask
            all_matched = True
            for pred, bit in matches:
                if pred(event):
                    mask |= bit
                else:
                    all_matched = False
            if all_matched:
                for sub in subs:
                    mask |= sub(event)
            return mask

        return run

    def rule(self, rule: RuleConfig, loc: Loc) -> Predicate | None:
        """A predicate for `rule`, or None when the rule has no condition (matches all)."""
        checks: list[Predicate] = []
        for field, getter in fields.SCALAR_GETTERS.items():
            pattern: str = getattr(rule, field)
            if pattern:
                checks.append(_scalar_check(getter, _regex(pattern, (*loc, field))))
        for field, map_getter in (
            ("labels", fields.object_labels), ("annotations", fields.object_annotations)
        ):
            wanted: dict[str, str] = getattr(rule, field)
            if wanted:
                pairs = tuple((k, _regex(p, (*loc, field, k))) for k, p in wanted.items())
                checks.append(_map_check(map_getter, pairs))
        if rule.min_count > 0:
            checks.append(_count_check(rule.min_count))
        if not checks:
            return None
        self.has_conditions = True
        if len(checks) == 1:
            return checks[0]
        all_checks = tuple(checks)

        def every(event: Event) -> bool:
            # A plain loop, not all(<genexpr>): no generator object per event.
            for check in all_checks:  # noqa: SIM110
                if not check(event):
                    return False
            return True

        return every


def _nothing(event: Event) -> int:
    return 0


def _regex(pattern: str, loc: Loc) -> regex.Search:
    try:
        return regex.compile_search(pattern)
    except regex.RegexError as exc:
        raise ConfigError(f"invalid regular expression {pattern!r}: {exc}",
                          path=render_path(loc)) from None


def _scalar_check(getter: fields.Getter, search: regex.Search) -> Predicate:
    def check(event: Event) -> bool:
        return search(getter(event))

    return check


def _map_check(getter: Callable[[Event], Mapping[str, Any]],
               pairs: tuple[tuple[str, regex.Search], ...]) -> Predicate:
    def check(event: Event) -> bool:
        values = getter(event)
        for key, search in pairs:
            value = values.get(key)
            if value is None or not search(value if type(value) is str else str(value)):
                return False
        return True

    return check


def _count_check(min_count: int) -> Predicate:
    def check(event: Event) -> bool:
        return fields.count(event) >= min_count

    return check
