"""The soak's HTTP receiver: a webhook in the bench process that counts every event version it
accepts and can be taken down.

It runs an aiohttp server on its own event loop in a thread, so the bench's main thread keeps
tailing the file receiver's output. eventpipe sends it JSON arrays (`webhook: {batch: true}`),
each item an Event as served, stamped by the fake API server with its add time.

Down means answering 503 to every request, after reading it, for as long as the outage lasts.
That is what the receiver's own front answers when the backend behind it is gone (a Loki or
webhook gateway, an ingress, a load balancer with no healthy target), and unlike a refused
connection it lets the bench count each retry eventpipe made during the outage, which is what
`retry.maxBackoff` governs. Up again, it accepts on the same port.
"""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
from aiohttp import web

from bench.common import free_port
from bench.soak_tally import VersionTally, stamp_of
from tests.fakes.serving import listen

CURRENT_S = 1.0
"""A delivered event at most this old (send stamp to arrival) is current: the receiver has
caught up, since one receiver's events arrive in spool order."""


class SoakHook:
    """The webhook receiver; `down()` / `up()` switch it between 503 and 200."""

    def __init__(self, tally: VersionTally) -> None:
        self.tally = tally
        self.port = free_port()
        self.refused = 0
        """Requests answered 503 (eventpipe's attempts while down)."""
        self.requests = 0
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.first_accepted_after_up: float | None = None
        self.caught_up_at: float | None = None
        """First arrival after `up()` of a batch whose newest event was current."""
        self.newest_rv = 0
        self._down = False
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The endpoint eventpipe posts to."""
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> None:
        """Start serving in the thread; returns once listening."""
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("the soak webhook did not start")

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def down(self) -> None:
        """From now on answer 503."""
        self.down_at = time.time()
        self._down = True

    def up(self) -> None:
        """From now on accept again; the drain is timed from here."""
        self.up_at = time.time()
        self._down = False

    @property
    def is_down(self) -> bool:
        """True during the outage."""
        return self._down

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/events", self._handle)
        self._runner, _ = self._loop.run_until_complete(listen(app, self.port))
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        if self._down:
            self.refused += 1
            return web.Response(status=503, text="no healthy backend")
        arrived = time.time()
        newest_sent = 0.0
        for event in orjson.loads(body):
            rv, sent = stamp_of(event)
            self.tally.add(rv)
            newest_sent = max(newest_sent, sent)
            self.newest_rv = max(self.newest_rv, rv)
        if self.up_at is not None:
            if self.first_accepted_after_up is None:
                self.first_accepted_after_up = arrived
            if self.caught_up_at is None and (arrived - newest_sent <= CURRENT_S
                                              or self.tally.complete()):
                self.caught_up_at = arrived
        return web.Response(text="ok")
