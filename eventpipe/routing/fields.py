"""Read the fields route rules look at from an Event dict, whichever API served it.

Rules are written against core/v1 names (resmo's); an events.k8s.io/v1 object carries the same
facts under other keys, so each getter falls back: involvedObject -> regarding, message -> note,
source.component -> deprecatedSource.component -> reportingController/reportingComponent,
source.host -> deprecatedSource.host, count -> series.count / deprecatedCount (missing = 1).

Getters run per event per condition, so they only do dict lookups and return str (never None).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

Event = Mapping[str, Any]
Getter = Callable[[Event], str]

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def _text(value: object) -> str:
    if type(value) is str:
        return value
    return "" if value is None else str(value)


def involved(event: Event) -> Mapping[str, Any]:
    """The involved object reference (core: involvedObject, events.k8s.io: regarding)."""
    obj = event.get("involvedObject")
    if obj is None:
        obj = event.get("regarding")
    return obj or _EMPTY


def message(event: Event) -> str:
    value = event.get("message")
    return _text(event.get("note") if value is None else value)


def api_version(event: Event) -> str:
    return _text(involved(event).get("apiVersion"))


def kind(event: Event) -> str:
    return _text(involved(event).get("kind"))


def namespace(event: Event) -> str:
    value = (event.get("metadata") or _EMPTY).get("namespace")
    return _text(event.get("namespace") if value is None else value)


def reason(event: Event) -> str:
    return _text(event.get("reason"))


def event_type(event: Event) -> str:
    return _text(event.get("type"))


def component(event: Event) -> str:
    value = (event.get("source") or _EMPTY).get("component")
    if not value:
        value = (event.get("deprecatedSource") or _EMPTY).get("component")
    if not value:
        value = event.get("reportingController") or event.get("reportingComponent")
    return _text(value)


def host(event: Event) -> str:
    value = (event.get("source") or _EMPTY).get("host")
    if not value:
        value = (event.get("deprecatedSource") or _EMPTY).get("host")
    return _text(value)


def object_labels(event: Event) -> Mapping[str, Any]:
    return involved(event).get("labels") or _EMPTY


def object_annotations(event: Event) -> Mapping[str, Any]:
    return involved(event).get("annotations") or _EMPTY


def count(event: Event) -> int:
    """Occurrences of the event: series.count, count, deprecatedCount, else 1."""
    series = event.get("series")
    if series:
        value = series.get("count")
        if type(value) is int:
            return value
    value = event.get("count")
    if type(value) is int:
        return value
    value = event.get("deprecatedCount")
    return value if type(value) is int else 1


SCALAR_GETTERS: Final[Mapping[str, Getter]] = MappingProxyType(
    {
        "message": message,
        "api_version": api_version,
        "kind": kind,
        "namespace": namespace,
        "reason": reason,
        "type": event_type,
        "component": component,
        "host": host,
    }
)
"""RuleConfig field name -> getter of the event value its regex is matched against."""

EMPTY_EVENT: Final[Event] = _EMPTY
"""An event with no fields, for evaluating a tree that has no conditions."""
