"""Start an aiohttp fake on a fixed loopback port (0 = pick one), so a test can stop it
(clients get connection refused) and start it again on the same port."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def listen(app: web.Application, port: int, **runner_options: Any
                 ) -> tuple[web.AppRunner, int]:
    """Serve `app` on 127.0.0.1:`port`; returns the runner and the bound port."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True,
                           **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    return runner, int(runner.addresses[0][1])
