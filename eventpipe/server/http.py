"""The one HTTP port: /metrics for Prometheus, /healthz (loop alive), /readyz (watch up,
spool writable)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventpipe.metrics import Metrics

ReadinessCheck = Callable[[], Awaitable[tuple[bool, dict[str, object]]]]


class HttpServer:
    """Serves the three endpoints until `stop`."""

    def __init__(self, *, metrics: Metrics, ready: ReadinessCheck, address: str,
                 port: int) -> None:
        self._metrics = metrics
        self._ready = ready
        self._address = address
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = port
        """The bound port (differs from the configured one when that was 0)."""

    async def start(self) -> None:
        """Bind and serve in the background."""
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/healthz", self._handle_healthz)
        app.router.add_get("/readyz", self._handle_readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._address, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _handle_healthz(self, request: web.Request) -> web.Response:
        # Answering at all proves the event loop is alive.
        return web.json_response({"status": "ok"})

    async def _handle_readyz(self, request: web.Request) -> web.Response:
        ok, details = await self._ready()
        return web.json_response({"ready": ok, **details}, status=200 if ok else 503)
