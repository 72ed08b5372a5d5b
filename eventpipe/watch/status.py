"""How the watcher reads a failed API answer: 410 (resume point too old) versus the rest.

Kept apart from the list/watch loop so the loop reads as the protocol. A Status body's
`message` is kept (it names the user and the verb RBAC refused); `Retry-After` is honoured.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson


class ResourceGone(Exception):
    """The resume resourceVersion or continue token is older than the API server keeps."""


class ApiError(Exception):
    """A non-2xx answer other than 410; `status` 0 means an in-stream ERROR without code."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.retry_after = retry_after


async def check_status(resp: aiohttp.ClientResponse) -> None:
    """Return for a 2xx answer; raise ResourceGone for 410, ApiError (with Retry-After) else."""
    if 200 <= resp.status < 300:
        return
    body = await resp.read()
    try:
        status: Any = orjson.loads(body)
        message = status.get("message", "") if isinstance(status, dict) else ""
    except orjson.JSONDecodeError:
        message = body[:200].decode("utf-8", "replace")
    if resp.status == 410:
        raise ResourceGone(message or "410 Gone")
    retry_after = resp.headers.get("Retry-After")
    raise ApiError(resp.status, message,
                   float(retry_after) if retry_after and retry_after.isdigit() else None)
