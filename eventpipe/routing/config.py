"""The route tree's config models, with resmo's keys and meaning.

A route has ``drop`` rules, ``match`` rules and sub-``routes``; a rule is a set of conditions
(regexes, unanchored like Go's regexp.MatchString) plus an optional ``receiver``. Semantics live
in `eventpipe.routing`, which compiles these models once. Unlike resmo, a regex that does not
compile is rejected here, at startup, instead of silently never matching.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field, field_validator

from eventpipe.core.model import Model, check_pattern


def _regex_doc(what: str) -> str:
    return f"RE2 regex (unanchored, as Go's regexp.MatchString) against {what}; empty = any."


class RuleConfig(Model):
    """Conditions an event must all meet; empty fields match anything."""

    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Label key -> regex; the involved object must have every key, each "
        "value matching (labels come from enrichment unless omitLookup).",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotation key -> regex; the involved object must have every key, each "
        "value matching.",
    )
    message: str = Field(default="", description=_regex_doc("the message (events.k8s.io: note)"))
    api_version: str = Field(
        default="", alias="apiVersion", description=_regex_doc("involvedObject.apiVersion")
    )
    kind: str = Field(default="", description=_regex_doc("involvedObject.kind"))
    namespace: str = Field(default="", description=_regex_doc("the Event's namespace"))
    reason: str = Field(default="", description=_regex_doc("the reason"))
    type: str = Field(default="", description=_regex_doc("the type (Normal, Warning)"))
    component: str = Field(
        default="",
        description=_regex_doc("source.component (events.k8s.io: deprecatedSource.component, "
                               "then reportingController)"),
    )
    host: str = Field(default="", description=_regex_doc("source.host"))
    min_count: int = Field(
        default=0, alias="minCount",
        description="Match only when the event's count (occurrences; missing = 1) is at "
        "least this.",
    )
    receiver: str = Field(
        default="",
        description="In a match rule: receiver that gets the event when the rule matches. "
        "Ignored in drop rules.",
    )

    @field_validator(
        "message", "api_version", "kind", "namespace", "reason", "type", "component", "host"
    )
    @classmethod
    def _scalar_regex(cls, value: str) -> str:
        return check_pattern(value)

    @field_validator("labels", "annotations")
    @classmethod
    def _map_regex(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            check_pattern(pattern, at=(key,))
        return value


class RouteConfig(Model):
    """A node of the route tree (resmo semantics, see eventpipe.routing)."""

    drop: list[RuleConfig] = Field(
        default_factory=list,
        description="If any drop rule matches, this route (and its sub-routes) ignores the event.",
    )
    match: list[RuleConfig] = Field(
        default_factory=list,
        description="Every matching rule with a receiver sends the event there; sub-routes "
        "run only if all match rules matched (no rules = all matched).",
    )
    routes: list[RouteConfig] = Field(
        default_factory=list, description="Sub-routes, evaluated in order."
    )

    def iter_rules(
        self, loc: tuple[str | int, ...] = ("route",)
    ) -> Iterator[tuple[tuple[str | int, ...], RuleConfig, bool]]:
        """Yield ``(loc, rule, is_match)`` for every rule in the tree, depth first."""
        for index, rule in enumerate(self.drop):
            yield (*loc, "drop", index), rule, False
        for index, rule in enumerate(self.match):
            yield (*loc, "match", index), rule, True
        for index, sub in enumerate(self.routes):
            yield from sub.iter_rules((*loc, "routes", index))
