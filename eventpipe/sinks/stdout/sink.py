"""The `stdout` receiver: Events as JSON lines on standard output (resmo's `stdout` sink).

In a cluster, stdout is the container log, and the node's log agent ships it. Lines are the
same as the `file` receiver's (`eventpipe.sinks.encoding`). The write runs in a worker thread:
stdout is a pipe to the container runtime, and a slow reader would otherwise block the loop.

Errors: an `OSError` (a broken pipe) or a write to a closed stream is `RetriableSinkError`;
the events are not at fault, so they stay in the spool rather than being dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO, TextIO, cast

from eventpipe.delivery.contract import ItemFailure, RetriableSinkError
from eventpipe.sinks.encoding import EncodesLines, LineEncoder
from eventpipe.sinks.stdout.config import StdoutSinkConfig


class StdoutSink(EncodesLines):
    """Writes one JSON line per event to a stream, flushing after each batch."""

    def __init__(
        self,
        *,
        name: str,
        layout: object | None,
        de_dot: bool = False,
        cluster_name: str = "",
        stream: BinaryIO | TextIO | None = None,
    ) -> None:
        self.name = name
        self._encoder = LineEncoder(
            name=name, layout=layout, de_dot=de_dot, cluster_name=cluster_name
        )
        # Looked up at construction, not import, so a test's or runner's replaced stdout counts.
        target = stream if stream is not None else getattr(sys.stdout, "buffer", sys.stdout)
        self._stream: BinaryIO | TextIO = target
        self._put: Callable[[bytes], object]
        if isinstance(target, io.TextIOBase):
            text = cast(TextIO, target)
            self._put = lambda data: text.write(data.decode())
        else:
            self._put = cast(BinaryIO, target).write
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Nothing to open: stdout already is."""

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """Write the batch as one chunk and flush; raises `RetriableSinkError` on failure."""
        if not payloads:
            return []
        data = b"\n".join(payloads) + b"\n"
        async with self._lock:
            try:
                await asyncio.to_thread(self._write, data)
            except (OSError, ValueError) as exc:  # ValueError: I/O on a closed file
                raise RetriableSinkError(f"receivers.{self.name}: write failed: {exc}") from exc
        return []

    async def close(self) -> None:
        """Flush; the stream itself is not ours to close. Safe to call twice."""
        async with self._lock:
            # A stream that is gone has nothing left to deliver: closing must not fail.
            with contextlib.suppress(OSError, ValueError):
                await asyncio.to_thread(self._stream.flush)

    def _write(self, data: bytes) -> None:
        self._put(data)
        self._stream.flush()


def build_sink(config: StdoutSinkConfig, *, name: str, cluster_name: str) -> StdoutSink:
    """The registry's factory: a `StdoutSink` from the `stdout:` model."""
    return StdoutSink(name=name, layout=config.layout, de_dot=config.de_dot,
                      cluster_name=cluster_name)
