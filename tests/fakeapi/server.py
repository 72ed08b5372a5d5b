"""FakeApiServer: an aiohttp kube-apiserver that serves Events by the real list/watch protocol.

End-to-end tests and the benchmark point the real kubernetes_asyncio client at it through a
kubeconfig (`write_kubeconfig`). It serves core/v1 and events.k8s.io/v1 Events (both views of
one store), LIST with limit/continue, WATCH from a resourceVersion with BOOKMARKs and
timeoutSeconds, and lets a test break it the ways a real control plane breaks: compaction (410
as HTTP status or in-stream ERROR), dropped streams, 429/5xx, RBAC 403, malformed lines.
Event writing and fault methods are synchronous and take effect on open watches at once.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from aiohttp import web

from tests.fakeapi import discovery
from tests.fakeapi.controls import Controls
from tests.fakeapi.convert import Obj, status, too_old
from tests.fakeapi.faults import Faults, RequestRecord, json_response
from tests.fakeapi.leases import LeaseStore
from tests.fakeapi.listing import list_events
from tests.fakeapi.objects import FakeObjects
from tests.fakeapi.store import EventStore
from tests.fakeapi.watch import WatchStream, error_line, run_stream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
_CORE, _GROUP = "/api/v1", "/apis/events.k8s.io/v1"
_RECORD = web.RequestKey("record", RequestRecord)


class FakeApiServer(Controls):
    """A fake kube-apiserver on 127.0.0.1; `async with FakeApiServer() as api: ...`."""

    def __init__(
        self,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bookmark_interval: float | None = None,
        gone_mode: str = "stream",
    ) -> None:
        self.token = token or secrets.token_hex(16)
        """The bearer token every request (but /version and health) must carry."""
        self.host = host
        self.port = port
        """The bound port (the free one chosen when 0 was asked for, after start())."""
        self.bookmark_interval = bookmark_interval
        """Seconds between periodic BOOKMARKs on streams that allow them; None = on demand only."""
        self.store = EventStore(on_change=self._wake_streams)
        self.faults = Faults()
        self.objects = FakeObjects()
        self.objects.on_activity = self._signal
        """Pods, owners and Nodes for enrichment lookups (tests.fakeapi.objects)."""
        self.leases = LeaseStore(on_change=self._signal)
        """coordination.k8s.io/v1 Leases (leader election); see tests/fakeapi/leases.py."""
        self.set_gone_mode(gone_mode)
        self.requests: list[RequestRecord] = []
        """Every request received, in arrival order."""
        self.streams: set[WatchStream] = set()
        """The watch streams open now."""
        self._activity = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and serve (on a free port unless one was given)."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/version", self._static(lambda: discovery.VERSION))
        for health in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(health, _ok)
        app.router.add_get("/api", self._static(lambda: discovery.api_versions(self.url[7:])))
        app.router.add_get("/apis", self._static(
            lambda: self.objects.api_groups(discovery.api_groups())))
        app.router.add_get(_CORE, self._static(
            lambda: self.objects.resource_list("v1", discovery.resource_list("v1"))))
        group_list = self._static(lambda: discovery.resource_list("events.k8s.io/v1"))
        app.router.add_get(_GROUP, group_list)
        for base, view in ((_CORE, "core"), (_GROUP, "events")):
            app.router.add_get(f"{base}/events", self._events_handler(view))
            app.router.add_get(f"{base}/namespaces/{{ns}}/events", self._events_handler(view))
        self.objects.register(app)
        self.leases.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Drop every open watch and stop listening."""
        self.disconnect_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def write_kubeconfig(self, path: Path | str, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (call after start())."""
        return discovery.write_kubeconfig(
            path, server=self.url, token=self.token, namespace=namespace
        )

    # ---- waiting (no sleep-and-hope in tests) ----------------------------------------------
    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until `predicate()` holds; re-checked on every request, stream open/close, write."""
        async with asyncio.timeout(within):
            while not predicate():
                self._activity.clear()
                await self._activity.wait()

    async def wait_for_watchers(self, n: int = 1, within: float = 5.0) -> None:
        """Wait until at least `n` watch streams are open."""
        await self.wait_for(lambda: len(self.streams) >= n, within)

    def _signal(self) -> None:
        self._activity.set()

    def _wake_streams(self) -> None:
        for ws in self.streams:
            ws.poke()
        self._activity.set()

    # ---- HTTP ---------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = RequestRecord(request.method, request.path, dict(request.query))
        request[_RECORD] = record
        self.requests.append(record)
        self._signal()
        try:
            resp = await self._guarded(request, handler, record)
        except web.HTTPException as exc:  # router 404/405: answer with a Status like the real one
            resp = json_response(status(exc.status, exc.reason), exc.status)
        if record.status is None:
            record.status = resp.status
        self._signal()
        return resp

    async def _guarded(
        self, request: web.Request, handler: Handler, record: RequestRecord
    ) -> web.StreamResponse:
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        if request.path not in _OPEN_PATHS and not authorized:
            return json_response(status(401, "Unauthorized"), 401)
        if record.is_events:
            failure = self.faults.take_failure(record)
            if failure is not None:
                return failure
        return await handler(request)

    def _static(self, body: Callable[[], Obj]) -> Handler:
        async def handle(_request: web.Request) -> web.StreamResponse:
            return json_response(body(), 200)

        return handle

    def _events_handler(self, view: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            namespace = request.match_info.get("ns")
            record = request[_RECORD]
            verb = "watch" if record.is_watch else "list"
            group = "" if view == "core" else "events.k8s.io"
            denied = self.faults.forbidden_response(namespace, verb, group)
            if denied is not None:
                return denied
            if record.is_watch:
                return await self._watch(request, record, view, namespace)
            return list_events(self.store, view, namespace, record.query)

        return handle

    async def _watch(
        self, request: web.Request, record: RequestRecord, view: str, namespace: str | None
    ) -> web.StreamResponse:
        query = record.query
        rv_param = query.get("resourceVersion", "")
        try:
            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
            start = int(rv_param) if rv_param not in ("", "0") else None
        except ValueError:
            return json_response(status(400, "invalid resourceVersion or timeoutSeconds"), 400)
        gone = start is not None and start < self.store.base
        if gone and self.faults.gone_mode == "http":
            return json_response(too_old(start or 0, self.store.base), 410)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        record.status = 200
        await resp.prepare(request)
        if gone:
            await resp.write(error_line(too_old(start or 0, self.store.base)))
            await resp.write_eof()
            return resp
        initial = b""
        if start is None:  # "0" or unset: the current state as synthetic ADDED, then changes
            start = self.store.rv
            initial = b"".join(c.added_line(view) for c in self.store.snapshot(start, namespace))
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        ws = WatchStream(view, namespace, bookmarks, start)
        self.streams.add(ws)
        self._signal()
        try:
            if initial:
                await resp.write(initial)
            await run_stream(
                request,
                resp,
                ws,
                self.store,
                stream_seconds=timeout,
                cut_after=self.faults.cut_after,
                bookmark_interval=self.bookmark_interval,
            )
            if ws.cut != "abort":
                await resp.write_eof()
        except ConnectionError:
            pass  # the client went away; nothing to finish
        finally:
            self.streams.discard(ws)
            self._signal()
        return resp


async def _ok(_request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")
