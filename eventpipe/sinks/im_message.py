"""The message an IM bot posts for one Event, shared by every bot receiver.

WeCom, DingTalk, Feishu, Slack and Bark all show a person a short text, not a JSON document, so
the default text lives here once: cluster, type, namespace, kind/name, reason, count, last-seen
time and the message, as plain text or markdown (the bots that render markdown all take
`**bold**`). Both API groups read the same (`involvedObject`/`regarding`, `message`/`note`,
the count and last-seen chains of `eventpipe.watch.normalize`). A throttle summary
(eventpipe.sinks.throttle) adds "…and N more occurrences in the last 5m" before the message.

A `template` (Go template) replaces the default text; it is compiled when the sink is built, so
a broken one is a startup error, and an event it cannot render is a dead letter.

Every bot caps its content in bytes; a text over the cap is cut on a UTF-8 boundary and says so
("…(truncated)"), because a silently shortened alert reads as a complete one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eventpipe.core.occurrences import occurrences
from eventpipe.core.timestamps import last_seen
from eventpipe.sinks.base import PermanentSinkError
from eventpipe.sinks.throttle import summary_note

if TYPE_CHECKING:
    from eventpipe.layout import Template

TRUNCATED = "…(truncated)"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _map(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def facts(event: dict[str, object], cluster: str) -> list[tuple[str, str]]:
    """(label, value) lines of the default message, empty values left out."""
    involved = _map(event.get("involvedObject") or event.get("regarding"))
    meta = _map(event.get("metadata"))
    namespace = _text(involved.get("namespace")) or _text(meta.get("namespace"))
    kind, name = _text(involved.get("kind")), _text(involved.get("name"))
    seen = last_seen(event)
    when = (datetime.fromtimestamp(seen, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if seen is not None else "")
    rows = [("Cluster", cluster), ("Type", _text(event.get("type"))),
            ("Namespace", namespace), ("Object", f"{kind}/{name}" if kind or name else ""),
            ("Reason", _text(event.get("reason"))), ("Count", str(occurrences(event))),
            ("Last seen", when)]
    return [(label, value) for label, value in rows if value]


def event_message(event: dict[str, object]) -> str:
    """The Event's own message (`message`, or `note` in events.k8s.io/v1)."""
    return _text(event.get("message")) or _text(event.get("note"))


def title(event: dict[str, object]) -> str:
    """A one-line headline: "Warning BackOff: default/Pod/web-1"."""
    involved = _map(event.get("involvedObject") or event.get("regarding"))
    where = "/".join(part for part in (_text(involved.get("namespace")),
                                       _text(involved.get("kind")),
                                       _text(involved.get("name"))) if part)
    head = " ".join(p for p in (_text(event.get("type")), _text(event.get("reason"))) if p)
    return f"{head or 'Event'}: {where}" if where else head or "Kubernetes event"


def plain_text(event: dict[str, object], cluster: str) -> str:
    """The default message as plain text, one "Label: value" per line, message last."""
    lines = [f"{label}: {value}" for label, value in facts(event, cluster)]
    # A throttle summary says how many were held back; before the message, which may be cut.
    lines += [note] if (note := summary_note(event)) else []
    message = event_message(event)
    if message:
        lines.append(f"Message: {message}")
    return "\n".join(lines)


def markdown_text(event: dict[str, object], cluster: str) -> str:
    """The default message as markdown: a bold headline, the facts, the message quoted."""
    lines = [f"**{title(event)}**", ""]
    lines += [f"- {label}: {value}" for label, value in facts(event, cluster)]
    lines += ["", note] if (note := summary_note(event)) else []
    message = event_message(event)
    if message:
        lines += ["", "> " + message.replace("\n", "\n> ")]
    return "\n".join(lines)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, ending with TRUNCATED when it was cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    keep = max(0, limit - len(TRUNCATED.encode()))
    # errors="ignore" drops a character split by the cut instead of sending half of it.
    return data[:keep].decode("utf-8", "ignore") + TRUNCATED


class MessageText:
    """Renders one bot's message text: its template, or the default in the bot's flavour."""

    __slots__ = ("_cluster", "_limit", "_markdown", "_template", "_title")

    def __init__(self, *, name: str, template: str, markdown: bool, limit: int,
                 cluster_name: str, title_template: str = "", where: str = "template") -> None:
        self._markdown = markdown
        self._limit = limit
        self._cluster = cluster_name
        self._template = compile_field(template, name=name, where=where)
        self._title = compile_field(title_template, name=name, where="title")

    def view(self, event: dict[str, object]) -> dict[str, object]:
        """What templates see: the event plus `clusterName` (resmo's EnhancedEvent)."""
        return {**event, "clusterName": self._cluster}

    def text(self, event: dict[str, object], view: dict[str, object] | None = None) -> str:
        """The message for one event, truncated to the bot's limit."""
        if self._template is not None:
            text = render(self._template, view if view is not None else self.view(event))
        elif self._markdown:
            text = markdown_text(event, self._cluster)
        else:
            text = plain_text(event, self._cluster)
        return truncate(text, self._limit)

    def title(self, event: dict[str, object], view: dict[str, object]) -> str:
        """The headline: the `title` template, or the default `title(event)`."""
        return render(self._title, view) if self._title is not None else title(event)


def compile_field(source: str, *, name: str, where: str) -> Template | None:
    """Compile a templated config value (None when empty); LayoutError names the key."""
    if not source:
        return None
    from eventpipe.layout import compile_template

    return compile_template(source, where=f"receivers.{name}.{where}")


def render(template: Template | None, view: dict[str, object]) -> str:
    """Render a compiled field ("" when unset); a render error dead-letters the event."""
    if template is None:
        return ""
    from eventpipe.layout import RenderError

    try:
        return template.render(view)
    except RenderError as exc:
        raise PermanentSinkError(str(exc)) from None
