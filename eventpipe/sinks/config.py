"""The base of every receiver's config model, and the field docs several of them share.

Each receiver's model lives in its folder (`eventpipe.sinks.<name>.config`) and is named in
`eventpipe.sinks.registry`; the config package builds the `Receiver` model from that registry.
Layouts stay raw Python objects (a string, or nested maps/lists of Go-template strings); the
sinks compile them when they are built.
"""

from __future__ import annotations

import re

from eventpipe.core.model import Model

# RFC 9110 field-name token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

LAYOUT_DOC = (
    "Payload template: a Go-template string, or a map/list whose string leaves are Go "
    "templates (`{{ .InvolvedObject.Name }}`, `{{ toJson . }}`), rendered per event. "
    "Omitted: the whole event as JSON."
)
DEDOT_DOC = (
    "Replace dots in label and annotation keys with underscores (on the event and its "
    "involvedObject) before rendering, as resmo's deDot."
)
SENT_UPDATE_DOC = (
    "Accepted for resmo compatibility and ignored: eventpipe delivers every version of an "
    "Event (a count going 1 -> 500 is 500 versions' worth of updates), and routing decides "
    "which ones a receiver takes."
)


class SinkConfig(Model):
    """Base of every sink's config model."""

    def waits_for_batch(self) -> bool:
        """Whether a partial batch waits `batch.maxWait` for more events by default.

        True for receivers that send a batch per request; local writers and one-request-per-
        event receivers gain nothing from waiting and override this with False.
        """
        return True

    def sends_each_event(self) -> bool:
        """Whether the receiver sends one request per event (the driver then hands it one
        event at a time, so a shutdown can ack what was confirmed); False by default."""
        return False


def check_header(name: str, value: str, *, templated: bool = False) -> None:
    """ValueError naming `headers.<name>` when the name is not a header name or a fixed value
    holds CR/LF (header injection); a templated value is checked when rendered."""
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"headers: {name!r} is not a valid header name")
    if not templated and ("\r" in value or "\n" in value):
        raise ValueError(f"headers.{name}: a header value cannot hold CR or LF")


def check_one_authorization(given: dict[str, bool]) -> None:
    """ValueError when more than one kind of authorization is set (kind -> is it set)."""
    kinds = [kind for kind, on in given.items() if on]
    if len(kinds) > 1:
        raise ValueError(f"authorization given twice: {' and '.join(kinds)}; keep one")
