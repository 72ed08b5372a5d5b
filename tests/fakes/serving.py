"""Start an aiohttp fake on a fixed loopback port (0 = pick one), so a test can stop it
(clients get connection refused) and start it again on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class Changes:
    """Wakes tests waiting on a fake each time it records something (no polling)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """The fake recorded a request."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_until(self, holds: Callable[[], bool], *, within: float,
                         timed_out: Callable[[], str]) -> None:
        """Return once `holds()`, re-checked after each change; AssertionError with
        `timed_out()` after `within` seconds."""
        deadline = time.monotonic() + within
        while not holds():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(timed_out())
            event = self._event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.5))


async def listen(app: web.Application, port: int, **runner_options: Any
                 ) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1:`port`; returns the runner and the bound port."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True,
                           **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    return runner, int(runner.addresses[0][1])
