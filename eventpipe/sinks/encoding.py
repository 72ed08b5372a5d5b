"""The line encoder shared by the `file` and `stdout` receivers.

Both receivers write one JSON document per line, as resmoio/kubernetes-event-exporter does, so
the rules for what a line holds live here once:

- No layout, no deDot: the line is the Event exactly as the API served it — the spooled `body`
  bytes, untouched, key order kept — unless enrichment added to it (an `EnrichedEvent`, see
  eventpipe.enrich): then the added keys are spliced into the served bytes at the start of the
  reference (`splice_enrichment`; served keys keep their order and values), or, where that is
  not safe, the enriched dict is serialised (the added keys follow the served ones). When
  `clusterName` is configured it is spliced in before the
  final `}` instead of parsing and re-serialising ~1 kB per event; only a body that already has a
  top-level `clusterName` (or does not look like an orjson object) is re-serialised.
- deDot: dots in label and annotation keys become underscores (resmo's `EnhancedEvent.DeDot`:
  `metadata.labels/annotations` and `involvedObject.labels/annotations`; `regarding` too, the
  events.k8s.io/v1 name of involvedObject). The caller's dict is never changed: the driver may
  hand the same parsed event to several receivers.
- Layout: compiled once at construction; each event is rendered with `clusterName` set (resmo's
  `EnhancedEvent.ClusterName` always exists, "" when unset, so templates may use it). A template
  that cannot render for one event is a `PermanentSinkError`: the driver dead-letters that event.
  A map/list layout gives a JSON line (resmo json-encodes the rendered map). A string layout (an
  eventpipe extension; resmo's file/stdout layouts are maps) gives its text, with CR/LF written
  as `\r`/`\n` so one event stays one line for the log shipper reading the file.

A line returned by `encode` carries no trailing newline; the sinks add it when they join a batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from eventpipe.core.jsonbytes import dumps_kept
from eventpipe.delivery.contract import PermanentSinkError
from eventpipe.enrich.apply import EnrichedEvent
from eventpipe.enrich.served import section_end, splice_at

if TYPE_CHECKING:
    from eventpipe.layout import Layout

_CLUSTER_KEY = b'"clusterName":'
# Sections of an Event whose `labels` / `annotations` maps get their keys de-dotted.
_DEDOT_SECTIONS = ("metadata", "involvedObject", "regarding")


def splice_enrichment(event: EnrichedEvent, body: bytes) -> bytes | None:
    """The served bytes with enrichment's keys inserted at the start of the reference object,
    instead of serialising the enriched dict (the same JSON object, other key order); None when
    that cannot be done safely and the caller serialises. A `"involvedObject":{` byte sequence
    can only be a key (inside a JSON string its quotes are escaped), and it must occur once."""
    added = event.added_members
    if added is None or event.section is None:
        return None
    at = section_end(body, event.section)
    return None if at is None else splice_at(body, at, added)


class LineEncoder:
    """Turns one Event into one JSON line (without the newline) for a receiver."""

    def __init__(
        self, *, name: str, layout: object | None, de_dot: bool, cluster_name: str
    ) -> None:
        self._name = name
        self._de_dot = de_dot
        self._cluster_name = cluster_name
        self._cluster_json = orjson.dumps(cluster_name)
        self._layout: Layout | None = None
        self._text_layout = isinstance(layout, str)
        if layout is not None:
            # Imported here so receivers without a layout never load the template engine.
            from eventpipe.layout import compile_layout

            # A LayoutError here is a config error and propagates to startup as it is.
            self._layout = compile_layout(layout, where=f"receivers.{name}.layout")

    @property
    def needs_event(self) -> bool:
        """True when `encode` works on the parsed event (a layout or deDot is set)."""
        return self._layout is not None or self._de_dot

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """Return the line for one event; raises `PermanentSinkError` if it cannot render."""
        if not self.needs_event:
            if not isinstance(event, EnrichedEvent):
                return self._splice(body)
            spliced = splice_enrichment(event, body)
            if spliced is not None:
                return self._splice(spliced)
        if event is None:
            # The driver should have parsed it (needs_event); stay correct if it did not.
            event = orjson.loads(body)
            if not isinstance(event, dict):
                raise PermanentSinkError(f"receivers.{self._name}: event body is not an object")
        if self._de_dot:
            event = de_dot(event)
        if self._layout is not None:
            return self._render(event)
        if self._cluster_name:
            event = {**event, "clusterName": self._cluster_name}
        try:
            return dumps_kept(event)  # held with its batch until sent
        except TypeError as exc:
            raise PermanentSinkError(f"receivers.{self._name}: cannot serialise: {exc}") from exc

    def _render(self, event: dict[str, object]) -> bytes:
        from eventpipe.layout import RenderError

        assert self._layout is not None
        try:
            line = self._layout.render_json({**event, "clusterName": self._cluster_name})
        except RenderError as exc:
            raise PermanentSinkError(f"receivers.{self._name}.layout: {exc}") from exc
        if self._text_layout:
            # JSON output never holds a raw CR/LF; text can (multi-line messages are common).
            return line.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
        return line

    def _splice(self, body: bytes) -> bytes:
        if not self._cluster_name:
            return body
        # orjson output is compact: an object ends with `}` and `{}` is the only empty one.
        if _CLUSTER_KEY not in body and body.endswith(b"}") and body.startswith(b"{"):
            if body == b"{}":
                return b"{" + _CLUSTER_KEY + self._cluster_json + b"}"
            return body[:-1] + b"," + _CLUSTER_KEY + self._cluster_json + b"}"
        # The key text appears somewhere (maybe nested, maybe top-level): decide on the parse.
        # Assigning an existing key keeps its position, so key order is still the served one.
        parsed = orjson.loads(body)
        if not isinstance(parsed, dict):
            raise PermanentSinkError(f"receivers.{self._name}: event body is not an object")
        parsed["clusterName"] = self._cluster_name
        return dumps_kept(parsed)


def de_dot(event: dict[str, object]) -> dict[str, object]:
    """Return `event` with dots in label/annotation keys replaced by `_` (resmo's DeDot).

    Copy-on-write: only the maps that change are copied, the input is never modified.
    """
    out: dict[str, object] | None = None
    for section_key in _DEDOT_SECTIONS:
        section = event.get(section_key)
        if not isinstance(section, dict):
            continue
        new_section: dict[str, object] | None = None
        for map_key in ("labels", "annotations"):
            mapping = section.get(map_key)
            if not isinstance(mapping, dict) or not any("." in k for k in mapping):
                continue
            if new_section is None:
                new_section = dict(section)
            new_section[map_key] = {k.replace(".", "_"): v for k, v in mapping.items()}
        if new_section is not None:
            if out is None:
                out = dict(event)
            out[section_key] = new_section
    return event if out is None else out


class EncodesLines:
    """Mixin for sinks whose payload is one `LineEncoder` line per event (file, stdout)."""

    _encoder: LineEncoder

    @property
    def needs_event(self) -> bool:
        """True when a layout or deDot is configured."""
        return self._encoder.needs_event

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """One JSON line (no newline) for the event; see `eventpipe.sinks.encoding`."""
        return self._encoder.encode(event, body)
