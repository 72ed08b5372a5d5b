"""Raw GETs for enrichment, and the token bucket that keeps them within kubeQPS/kubeBurst.

Lookups go through the kubernetes_asyncio ApiClient the watcher already holds (its auth,
TLS and token refresh) with `_preload_content=False`, so the answer is the raw aiohttp
response parsed with orjson: no model objects. The budget never waits: when it is spent the
lookup is not made and the event goes on unenriched (counted), since holding events back for
labels would turn an API rate limit into delivery lag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

# client-go's defaults, which resmo's kubeQPS/kubeBurst fall back to when 0.
DEFAULT_QPS = 5.0
DEFAULT_BURST = 10


class ObjectClient(Protocol):
    """What the enricher needs from the API server."""

    async def get(self, path: str) -> tuple[int, Any]:
        """GET `path`: (HTTP status, parsed JSON body; None unless 2xx). Raises on
        connection errors and timeouts."""
        ...


class StreamClient(Protocol):
    """What the metadata caches need: a GET whose body is read as it arrives."""

    async def open(self, path: str, query: list[tuple[str, str]], *, accept: str,
                   request_timeout: Any) -> Any:
        """GET `path?query` with this Accept header; the unread aiohttp response (the caller
        reads and releases it)."""
        ...


class KubeObjectClient:
    """`ObjectClient` over a kubernetes_asyncio `ApiClient`."""

    def __init__(self, api_client: Any, *, timeout: float) -> None:
        """`timeout`: seconds for one request, connect to last byte."""
        self._api = api_client
        self._timeout = timeout

    async def get(self, path: str) -> tuple[int, Any]:
        """One raw GET, authenticated like the watcher's requests."""
        resp = await self._api.call_api(
            path, "GET", header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False,
            _request_timeout=self._timeout)
        try:
            status = int(resp.status)
            body = await resp.read()
        finally:
            resp.release()
        if 200 <= status < 300:
            return status, orjson.loads(body)
        return status, None


    async def open(self, path: str, query: list[tuple[str, str]], *, accept: str,
                   request_timeout: Any) -> Any:
        """A list or watch request; `request_timeout` a number or an aiohttp.ClientTimeout."""
        return await self._api.call_api(
            path, "GET", query_params=query, header_params={"Accept": accept},
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=request_timeout)


class LookupBudget:
    """A non-blocking token bucket: `qps` tokens a second, at most `burst` saved up."""

    def __init__(self, *, qps: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """0 for either means client-go's default (5 QPS, burst 10)."""
        self.qps = qps or DEFAULT_QPS
        self.burst = max(1, burst or DEFAULT_BURST)
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()

    def try_take(self) -> bool:
        """Take one token if there is one; never waits."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.qps)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
