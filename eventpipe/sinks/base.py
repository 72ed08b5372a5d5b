"""The contract between the sink driver and one sink module.

A sink only turns a batch of rendered payloads into I/O and the outcome into success, retry or
reject; batching, backoff, acking, dead letters and metrics live in `eventpipe.sinks.driver`.

Error tree::

    SinkError                 (retriable: bool, retry_after: float | None)
     ├── RetriableSinkError   network errors, timeouts, 429, 5xx: try again later
     └── PermanentSinkError   400, 413, unrenderable: dead-letter, never retry

Adding a sink is one module implementing `Sink` and one line in `eventpipe.sinks.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class SinkError(Exception):
    """A failure to deliver; `retriable` says whether trying again can help."""

    retriable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds the peer asked us to wait (HTTP Retry-After), if it said."""


class RetriableSinkError(SinkError):
    """Transient: the same request may succeed later."""

    retriable = True


class PermanentSinkError(SinkError):
    """The peer rejected the content; retrying the same bytes cannot succeed."""

    retriable = False


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item of a batch that failed while the others succeeded (partial success)."""

    index: int
    """Position of the item in the batch passed to `Sink.send`."""
    error: SinkError


class Sink(Protocol):
    """One receiver's I/O. Implementations are created from their config model."""

    name: str
    """The receiver name from the config."""

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """Turn one event into this sink's payload.

        `event` is the parsed Event (after enrichment) or None when the driver did not need to
        parse it (no layout, no route conditions); `body` is the Event as served (orjson bytes).
        Raises `PermanentSinkError` when a template cannot render for this event.
        """
        ...

    @property
    def needs_event(self) -> bool:
        """True when `encode` needs the parsed event (it has a layout)."""
        ...

    async def start(self) -> None:
        """Open files / sessions. Called once before the first send."""
        ...

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """Deliver a batch in order.

        Returns the items that failed when the others were delivered (empty: all delivered).
        Raises `SinkError` when the batch as a whole failed.
        """
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...
