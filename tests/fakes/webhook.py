"""A generic HTTP receiver for sink tests: records every request, answers 200, fails on demand.

Any receiver that POSTs (the webhook, and IM bots built on it) can be tested against it:

- `requests` holds every request (method, path, query, headers, body, the status answered);
  `accepted` only the 2xx ones, `json_items()` their JSON bodies with arrays flattened.
- `fail_next(n, status, retry_after)`: the next n requests get `status` (with Retry-After).
- `reject_when(predicate, status=400)`: requests the predicate matches get 400 (or `status`),
  as an API that validates its input does; `require_json` (default on) also answers 400 to a
  body that is not JSON when the request says `application/json`.
- `delay`: seconds each answer takes (a slow peer).
- `stop()` / `start()`: the port refuses connections while stopped and comes back on the same
  port (open keep-alive connections are closed too, as when a server restarts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.serving import Changes, listen


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    status: int
    """What the fake answered."""
    at: float = 0.0
    """time.monotonic() when it arrived."""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


class WebhookReceiver:
    """An aiohttp server on 127.0.0.1 standing in for any webhook endpoint."""

    def __init__(self, *, port: int = 0, require_json: bool = True) -> None:
        self.port = port
        """The bound port (chosen on the first start when 0)."""
        self.require_json = require_json
        self.delay = 0.0
        """Seconds each answer takes, as a slow peer's."""
        self.requests: list[Recorded] = []
        self._fail: list[tuple[int, int | None]] = []
        self._reject: Callable[[Recorded], bool] | None = None
        self._reject_answer: tuple[int, int | None] = (400, None)
        self._runner: web.AppRunner | None = None
        self.changes = Changes()
        """Set (and replaced) on every request, so waiters need not poll."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    def url(self, path: str = "/hook") -> str:
        """The URL of `path` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        """Listen (again) on the same port."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await listen(app, self.port)

    async def stop(self) -> None:
        """Stop listening and close open connections: clients now get connection refused."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def running(self) -> bool:
        """True while the port accepts connections."""
        return self._runner is not None

    def fail_next(self, n: int, status: int = 500, retry_after: int | None = None) -> None:
        """Answer the next `n` requests with `status` (and `Retry-After` seconds, if given)."""
        self._fail.extend([(status, retry_after)] * n)

    def reject_when(self, predicate: Callable[[Recorded], bool] | None, *, status: int = 400,
                    retry_after: int | None = None) -> None:
        """Answer `status` (400 unless told) to requests the predicate matches (None: stop)."""
        self._reject = predicate
        self._reject_answer = (status, retry_after)

    @property
    def accepted(self) -> list[Recorded]:
        """The requests answered 2xx, in arrival order."""
        return [r for r in self.requests if 200 <= r.status < 300]

    def json_items(self) -> list[Any]:
        """Accepted JSON bodies in order; a JSON array counts as its items."""
        items: list[Any] = []
        for record in self.accepted:
            body = record.json()
            items.extend(body if isinstance(body, list) else [body])
        return items

    async def wait_for(self, predicate: Callable[[WebhookReceiver], bool], *,
                       within: float = 30.0, what: str = "condition") -> None:
        """Wait (without polling) until `predicate(self)` holds; AssertionError after `within`."""
        await self.changes.wait_until(
            lambda: predicate(self), within=within,
            timed_out=lambda: (f"webhook fake: timed out after {within}s waiting for "
                               f"{what} ({len(self.requests)} requests so far)"))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)  # the peer's own latency, not a wait for a result
        status, text = 200, "ok"
        headers: dict[str, str] = {}
        probe = Recorded(request.method, request.path, dict(request.query),
                         CIMultiDict(request.headers), body, 0, time.monotonic())
        retry_after: int | None = None
        if self._fail:
            status, retry_after = self._fail.pop(0)
            text = f"injected failure {status}"
        elif self.require_json and request.content_type == "application/json" and not _is_json(
                body):
            status, text = 400, "invalid JSON body"
        elif self._reject is not None and self._reject(probe):
            status, retry_after = self._reject_answer
            text = "rejected by the test"
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.requests.append(Recorded(probe.method, probe.path, probe.query, probe.headers,
                                      body, status, probe.at))
        self.changes.notify()
        return web.Response(status=status, text=text, headers=headers)


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True
