"""A spool reader that prepares each batch for delivery as it is read.

The sink worker (eventpipe.sinks.driver) reads a batch and encodes it synchronously; the
enrichment lookups a batch needs must be awaited in between. Wrapping the worker's reader puts
that one await (`Delivery.prepare`: parse once, prefetch with a deadline) right after the read,
without the worker knowing about enrichment. Every other call passes straight through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from eventpipe.sinks.driver import SpoolReader
from eventpipe.spool.records import StoredRow

Prepare = Callable[[Sequence[StoredRow]], Awaitable[None]]


class PreparingReader:
    """`SpoolReader` whose `read_after` runs `prepare` on the rows it returns."""

    def __init__(self, spool: SpoolReader, prepare: Prepare) -> None:
        self._spool = spool
        self._prepare = prepare

    async def read_after(self, after_seq: int, limit: int) -> list[StoredRow]:
        """The next rows after `after_seq`, prepared for delivery."""
        rows = await self._spool.read_after(after_seq, limit)
        if rows:
            await self._prepare(rows)
        return rows

    async def cursor(self, receiver: str) -> int:
        """Passed through."""
        return await self._spool.cursor(receiver)

    async def read_seqs(self, seqs: Sequence[int]) -> list[StoredRow]:
        """Passed through."""
        return await self._spool.read_seqs(seqs)

    async def read_since(self, *, since: float | None = None, from_seq: int | None = None,
                         after_seq: int = 0, limit: int) -> list[StoredRow]:
        """Passed through (the throttle's restore reads without sending)."""
        return await self._spool.read_since(since=since, from_seq=from_seq,
                                            after_seq=after_seq, limit=limit)

    async def ack(self, receiver: str, acked_seq: int, *,
                  dead: Sequence[tuple[int, str]] = ()) -> None:
        """Passed through."""
        await self._spool.ack(receiver, acked_seq, dead=dead)

    async def head_seq(self) -> int:
        """Passed through."""
        return await self._spool.head_seq()
