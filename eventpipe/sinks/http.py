"""What every HTTP sink shares: a session with timeouts and TLS, and one answer to "is this
response a success, a retry or a rejection" (like Vector's RetryLogic), so no sink keeps its
own list of status codes.

    2xx                      success
    408, 425, 429, 5xx       RetriableSinkError (Retry-After honoured)
    401, 403, 404            RetriableSinkError: credentials or URL an operator must fix; the
                             events wait in the spool instead of filling dead letters
    other 4xx (400, 413...)  PermanentSinkError: the content is at fault
    connection errors,
    timeouts                 RetriableSinkError
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

import aiohttp

from eventpipe.sinks.base import PermanentSinkError, RetriableSinkError, SinkError

RETRIABLE_STATUS = frozenset({408, 425, 429})
CONFIG_STATUS = frozenset({401, 403, 404})


def new_session(*, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None,
                headers: Mapping[str, str] | None = None) -> aiohttp.ClientSession:
    """An aiohttp session for one receiver (keep-alive pool, total timeout per request)."""
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True,
                                     limit=8)
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10),
                                 headers=dict(headers or {}))


class ReceiverSession:
    """One receiver's keep-alive session: opened on first use (or by the sink's `start`), and
    again after `close`, so every HTTP sink shares one lifecycle."""

    def __init__(self, *, timeout: float, ssl_context: ssl.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self._timeout = timeout
        self._ssl = ssl_context
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        """The open session (created here when there is none; call inside the event loop)."""
        if self._session is None or self._session.closed:
            self._session = new_session(timeout=self._timeout, ssl_context=self._ssl,
                                        headers=self._headers)
        return self._session

    async def close(self) -> None:
        """Close the session (idempotent); `get` opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


def status_error(status: int, body: bytes, headers: Mapping[str, str],
                 *, what: str = "") -> SinkError | None:
    """The error for an HTTP answer, or None when it is a success."""
    if 200 <= status < 300:
        return None
    detail = body[:500].decode("utf-8", "replace").strip()
    message = f"{what}HTTP {status}" + (f": {detail}" if detail else "")
    if status in CONFIG_STATUS:
        return RetriableSinkError(f"{message} (check the receiver's URL and credentials)")
    if status in RETRIABLE_STATUS or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return RetriableSinkError(message, retry_after=retry_after)
    return PermanentSinkError(message)


async def request(session: aiohttp.ClientSession, method: str, url: str, *,
                  data: bytes | None = None, headers: Mapping[str, str] | None = None,
                  ) -> tuple[int, bytes, Mapping[str, str]]:
    """Send one request; transport failures become RetriableSinkError (never raw aiohttp)."""
    try:
        async with session.request(method, url, data=data, headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise RetriableSinkError(f"{method} {_redact(url)}: {type(exc).__name__}: {exc}") from exc


async def send_checked(session: aiohttp.ClientSession, method: str, url: str, *,
                       data: bytes | None = None, headers: Mapping[str, str] | None = None,
                       ) -> bytes:
    """`request`, raising the classified error unless 2xx; returns the response body."""
    status, body, response_headers = await request(session, method, url, data=data,
                                                   headers=headers)
    error = status_error(status, body, response_headers)
    if error is not None:
        raise error
    return body


def _redact(url: str) -> str:
    # URLs of IM bots carry their secret token in the path (Slack, Feishu) or the query
    # (DingTalk, WeCom), and some carry user:password@: log only scheme and host.
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    return f"{scheme}://{host}/…" if rest else "…"
