"""What every HTTP sink shares: the session (keep-alive, timeouts, TLS from the `tls:` keys),
the Authorization header values, and one answer to "is this response a success, a retry or a
rejection", so no sink keeps its own list of status codes or its own Retry-After parser.

    2xx                      success
    408, 425, 429, 5xx       RetriableSinkError (Retry-After honoured)
    401, 403, 404            RetriableSinkError: credentials or URL an operator must fix; the
                             events wait in the spool instead of filling dead letters
    413                      TooLargeError: the driver re-sends the items in smaller groups
    other 4xx (400...)       PermanentSinkError: the content is at fault
    connection errors,
    timeouts                 RetriableSinkError (a certificate failure says so, naming the host)
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from time import time

import aiohttp

from eventpipe.delivery.contract import (
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
    TooLargeError,
)
from eventpipe.sinks.tls import TlsConfig

RETRIABLE_STATUS = frozenset({408, 425, 429})
CONFIG_STATUS = frozenset({401, 403, 404})


def ssl_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """An SSLContext for the `tls:` keys, or None to use the library default (system CAs).

    Raises ValueError naming the file when a CA/cert/key file cannot be loaded, so a bad path is
    a startup error rather than a stream of retriable send failures.
    """
    if tls is None or not (tls.insecure_skip_verify or tls.ca_file or tls.cert_file):
        return None
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls: cannot load certificates: {exc}") from exc
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def basic_auth(username: str, password: str) -> str:
    """The `Authorization` value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def bearer_auth(token: str) -> str:
    """The `Authorization` value of a bearer token."""
    return f"Bearer {token}"


def api_key_auth(key: str) -> str:
    """The `Authorization` value of an Elasticsearch API key (the base64 `id:key`)."""
    return f"ApiKey {key}"


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
    again after `close`, so every HTTP sink shares one lifecycle. The `tls:` keys become the
    SSLContext here, at construction: a bad certificate path is a startup error."""

    def __init__(self, *, timeout: float, tls: TlsConfig | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        self._timeout = timeout
        self._ssl = ssl_context(tls)
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
    if status == 413:
        return TooLargeError(message)
    return PermanentSinkError(message)


async def request(session: aiohttp.ClientSession, method: str, url: str, *,
                  data: bytes | None = None, headers: Mapping[str, str] | None = None,
                  ) -> tuple[int, bytes, Mapping[str, str]]:
    """Send one request; transport failures become RetriableSinkError (never raw aiohttp)."""
    try:
        async with session.request(method, url, data=data, headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers
    except (aiohttp.ClientConnectorError, ssl.SSLError) as exc:
        raise RetriableSinkError(f"{method} {_redact(url)}: {connection_problem(exc)}") from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise RetriableSinkError(f"{method} {_redact(url)}: {type(exc).__name__}: {exc}") from exc


def connection_problem(exc: BaseException) -> str:
    """What went wrong connecting, naming the host (never the URL, which may hold a token).

    A failed certificate check must read as one: aiohttp's error is also an OSError whose errno
    is OpenSSL's 1, which `os.strerror` would tell as "Operation not permitted".
    """
    host = ""
    if isinstance(exc, aiohttp.ClientConnectorError):
        host = f"{exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        cert = getattr(exc, "certificate_error", exc)
        detail = getattr(cert, "verify_message", "") or getattr(cert, "reason", "") or str(cert)
        return (f"TLS certificate problem with {host or 'the server'}: {detail}; the server's "
                "certificate is not trusted for that name: set tls.caFile to the CA that "
                "signed it, or use the name the certificate is issued for in the URL")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        return (f"TLS handshake with {host or 'the server'} failed: {reason} (is it serving "
                "TLS on that port? check tls.certFile / tls.keyFile if it asks for a client "
                "certificate)")
    errno = getattr(exc, "os_error", exc).errno if isinstance(exc, OSError) else None
    reason = os.strerror(errno) if isinstance(errno, int) else str(exc)
    return f"cannot connect to {host or 'the server'}: {reason}"


def without_url(error: RetriableSinkError, what: str) -> RetriableSinkError:
    """`error` of a transport failure, retold without the URL: webhook and bot URLs carry their
    token in the path or the query, and an aiohttp message may quote them. An HTTP answer's
    error (no cause) holds status and body only and is returned as it is."""
    cause = error.__cause__
    if cause is None:
        return error
    if isinstance(cause, aiohttp.ClientConnectorError | ssl.SSLError):
        return RetriableSinkError(f"{what} failed: {connection_problem(cause)}")
    errno = getattr(cause, "errno", None)
    reason = f": {os.strerror(errno)}" if isinstance(errno, int) else ""
    return RetriableSinkError(f"{what} failed: {type(cause).__name__}{reason}")


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
