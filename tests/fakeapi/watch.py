"""One open WATCH stream of the fake API server, fed from the store's history.

The stream replays every change after its resume revision and then follows live writes; it is
written in batches of pre-serialised lines (one `write` per batch, not per event) so a single
watcher can take well over 50,000 events/s. Fault injection reaches a stream through the flags
on `WatchStream`, which the server sets and the loop obeys at its next turn: `cut` ends it
(abort = connection dropped mid-stream, clean = the normal end a client must resume from),
`raw` queues malformed lines, `bookmark_due` asks for a BOOKMARK.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from tests.fakeapi.convert import too_old
from tests.fakeapi.store import Compacted, EventStore

_BATCH = 2048


@dataclass(eq=False)
class WatchStream:
    """The state of one watch connection, shared between its loop and the server's controls."""

    view: str
    namespace: str | None
    bookmarks: bool
    pos: int
    """The revision this stream has reached (every change <= pos was sent or filtered out)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    raw: list[bytes] = field(default_factory=list)
    bookmark_due: bool = False
    cut: str | None = None
    sent: int = 0
    """Events (not bookmarks or raw lines) written so far."""

    def poke(self) -> None:
        """Make the loop look at its flags and the store now."""
        self.wake.set()


def bookmark_line(view: str, rv: int) -> bytes:
    """A BOOKMARK: an object that carries only kind, apiVersion and metadata.resourceVersion."""
    api = "v1" if view == "core" else "events.k8s.io/v1"
    obj = {"kind": "Event", "apiVersion": api, "metadata": {"resourceVersion": str(rv)}}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def error_line(status: dict[str, object]) -> bytes:
    """An in-stream ERROR event carrying a Status, as the watch cache sends for 410."""
    return orjson.dumps({"type": "ERROR", "object": status}) + b"\n"


async def run_stream(
    request: web.Request,
    resp: web.StreamResponse,
    ws: WatchStream,
    store: EventStore,
    *,
    stream_seconds: float | None,
    cut_after: int | None,
    bookmark_interval: float | None,
) -> None:
    """Serve `ws` until timeout, a cut, compaction past it, or the client going away."""
    loop = asyncio.get_running_loop()
    deadline = None if stream_seconds is None else loop.time() + stream_seconds
    periodic = bookmark_interval if ws.bookmarks else None
    next_bookmark = None if periodic is None else loop.time() + periodic
    with contextlib.suppress(ConnectionError):
        while True:
            ws.wake.clear()  # cleared before looking, so a write during our awaits re-wakes us
            if ws.cut is not None:
                if ws.cut == "abort":
                    _abort(request)
                return
            now = loop.time()
            if deadline is not None and now >= deadline:
                return  # checked before any write: a busy stream must still end on time
            if ws.raw:
                data = b"".join(ws.raw)
                ws.raw.clear()
                await resp.write(data)
            try:
                batch = store.changes_after(ws.pos, _BATCH)
            except Compacted as exc:
                await resp.write(error_line(too_old(exc.requested, exc.base)))
                return
            if batch:
                ws.pos = batch[-1].rv
                ns = ws.namespace
                lines = [c.line(ws.view) for c in batch if ns is None or c.namespace == ns]
                if cut_after is not None and ws.sent + len(lines) >= cut_after:
                    lines = lines[: cut_after - ws.sent]
                    ws.sent += len(lines)
                    await resp.write(b"".join(lines))
                    _abort(request)
                    return
                ws.sent += len(lines)
                if lines:
                    await resp.write(b"".join(lines))
                await asyncio.sleep(0)  # let other watchers and the writers run between batches
                continue
            now = loop.time()
            if ws.bookmarks and (ws.bookmark_due or (next_bookmark and now >= next_bookmark)):
                ws.bookmark_due = False
                if periodic is not None:
                    next_bookmark = now + periodic
                await resp.write(bookmark_line(ws.view, ws.pos))
                continue
            ws.bookmark_due = False  # asked for on a stream without allowWatchBookmarks
            waits = [t - now for t in (deadline, next_bookmark) if t is not None]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.wake.wait(), min(waits) if waits else None)


def _abort(request: web.Request) -> None:
    """Drop the connection with no terminating chunk: the client sees a broken stream."""
    if request.transport is not None:
        request.transport.abort()
