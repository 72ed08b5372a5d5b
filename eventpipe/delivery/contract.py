"""The contract between the delivery driver and one receiver's sink.

A sink turns one event into its own payload type `P` (a Loki entry, a Kafka record, a bulk
item, a line of bytes, a bot message) and a batch of payloads into I/O, and reports what
became of each item. Batching, retry with backoff and Retry-After, splitting a batch the peer
refused as a whole, dead letters, acks, routing and storm control are the driver's
(`eventpipe.delivery.driver`, `eventpipe.delivery.delivery`); no sink loops or halves.

    Sink[P]
      encode(event, body) -> P               once per event, the hot path
      send(batch: list[P]) -> [ItemFailure]  the items that failed; the others were delivered
      start(), close()

A sink whose payload is made from the stored row's columns rather than the body (the `metrics`
receiver counts each row's count delta, the loki receiver reads when it was stored) also has
`encode_row(row, event) -> P`, which the driver then calls instead of `encode` (`RowEncoder`).

What an item's error tells the driver::

    SinkError                   (retriable: bool, retry_after: float | None)
     ├── RetriableSinkError     network errors, timeouts, 408, 429, 5xx: try again later,
     │                          not before `retry_after` when the peer said so
     └── PermanentSinkError     the item is at fault (400, unrenderable): dead-letter it
          └── GroupRejectedError  the request carrying several items was refused as a whole
               │                  (a 400 naming some of its entries): the driver sends the items
               │                  again in halves until the faulty ones stand alone
               └── TooLargeError  413 / a record over the size limit, the same way

`send` raising a `SinkError` means that outcome for every item of the batch (nothing was
delivered). Any other exception is a bug: the driver logs it and retries the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from eventpipe.spool.rows import StoredRow

P = TypeVar("P")
"""A sink's payload type: what `encode` makes of one event and `send` takes in a batch."""

Event = dict[str, object]
"""A parsed Kubernetes Event (after enrichment)."""


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


class GroupRejectedError(PermanentSinkError):
    """The request carrying this item and others was refused as a whole; a smaller group may
    pass. The driver re-sends such items in halves; a lone one is dead-lettered."""


class TooLargeError(GroupRejectedError):
    """The request was too large (HTTP 413, a record over the size limit)."""


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """One item of a batch that failed while the others succeeded (partial success)."""

    index: int
    """Position of the item in the batch passed to `Sink.send`."""
    error: SinkError


class Sink(Protocol[P]):
    """One receiver's I/O. Implementations are built from their config model by the registry
    (`eventpipe.sinks.registry`)."""

    name: str
    """The receiver name from the config."""

    @property
    def needs_event(self) -> bool:
        """True when `encode` reads the parsed event; the driver then always passes it."""
        ...

    def encode(self, event: Event | None, body: bytes) -> P:
        """Turn one event into this sink's payload.

        `event` is the parsed Event (after enrichment) whenever `needs_event` is True, else it
        may be None; `body` is the Event as served (orjson bytes). Raises
        `PermanentSinkError` when the event cannot be encoded (a template that cannot render).
        """
        ...

    async def start(self) -> None:
        """Open files / sessions. Called once before the first send."""
        ...

    async def send(self, batch: list[P]) -> Sequence[ItemFailure]:
        """Deliver a batch in order.

        Returns the items that failed (empty: all delivered); raises `SinkError` when the
        batch as a whole failed.
        """
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...


P_co = TypeVar("P_co", covariant=True)


@runtime_checkable
class RowEncoder(Protocol[P_co]):
    """A sink that encodes the stored row itself (its columns, e.g. `count_delta`)."""

    def encode_row(self, row: StoredRow, event: Event | None) -> P_co:
        """The payload of one stored row (`event` as `Sink.encode` gets it); called instead of
        `Sink.encode`."""
        ...
