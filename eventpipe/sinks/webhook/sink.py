"""The generic `webhook:` receiver: events as HTTP requests to any endpoint.

Two modes, chosen by `webhook.batch`:

- per event (default, resmo's behaviour): one request per event, sent one after another so the
  receiver sees spool order. A permanent answer (400...) fails only that event; at the first
  retriable failure (429, 5xx, refused) the batch stops there, and that event and every one after
  it are reported retriable, so a retry resends them in order. Nothing sent yet: the whole batch
  fails as one retriable error.
- batch: one request whose body is the JSON array of the batch's bodies. A permanent answer to
  a multi-event request is split in halves and each half sent again, so one event the endpoint
  cannot take (or a body too large, 413) dead-letters only itself, not its neighbours. The halves
  already sent stay sent; a retry after that resends only what was not.

Bodies are `LineEncoder` output: the Event as served (+ `clusterName`), or the layout as JSON.
Templated headers are rendered in `encode` (the hot path runs there, once per event) and carried
to `send` in front of the body: `value\\n...value\\nbody`. Rendered values are checked for CR/LF
there (header injection), which also makes the framing unambiguous. Fixed headers, auth and the
Content-Type live on the session, built once.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence

import orjson

from eventpipe.config.tls import TlsConfig, ssl_context
from eventpipe.delivery.contract import (
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.http import ReceiverSession, send_checked
from eventpipe.sinks.webhook.config import WebhookSinkConfig, is_templated

_NL = b"\n"


class WebhookSink:
    """Sends events to one HTTP endpoint; see the module docstring for the two modes."""

    def __init__(self, *, name: str, endpoint: str, headers: Mapping[str, str] | None = None,
                 layout: object | None = None, method: str = "POST", batch: bool = False,
                 timeout: float = 10.0, content_type: str = "application/json",
                 username: str = "", password: str = "", bearer_token: str = "",
                 tls: TlsConfig | None = None, cluster_name: str = "") -> None:
        from eventpipe.layout import compile_template

        self.name = name
        self._endpoint = endpoint
        self._method = method
        self._batch = batch
        self._encoder = LineEncoder(name=name, layout=layout, de_dot=False,
                                    cluster_name=cluster_name)
        self._cluster_name = cluster_name
        self._ssl = ssl_context(tls)  # bad cert paths: ValueError at startup
        fixed = {"Content-Type": content_type}
        templated = []
        for key, value in (headers or {}).items():
            if is_templated(value):
                where = f"receivers.{name}.webhook.headers.{key}"
                templated.append((key, compile_template(value, where=where)))
            else:
                fixed[key] = value
        if batch and templated:
            raise ValueError(f"receivers.{name}.webhook: templated headers need batch: false")
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            fixed["Authorization"] = f"Basic {token}"
        elif bearer_token:
            fixed["Authorization"] = f"Bearer {bearer_token}"
        self._templated = tuple(templated)
        self._http = ReceiverSession(timeout=timeout, ssl_context=self._ssl, headers=fixed)

    @property
    def needs_event(self) -> bool:
        """True with a layout or templated headers (both read the parsed event)."""
        return self._encoder.needs_event or bool(self._templated)

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """The request body, prefixed with the rendered templated header values, if any."""
        payload = self._encoder.encode(event, body)
        if not self._templated:
            return payload
        from eventpipe.layout import RenderError

        if event is None:  # needs_event is True, so the driver parses; stay correct if not
            parsed = orjson.loads(body)
            if not isinstance(parsed, dict):
                raise PermanentSinkError(f"receivers.{self.name}: event body is not an object")
            event = parsed
        # A missing .ClusterName renders "" anyway: copy the event only when there is one.
        view = {**event, "clusterName": self._cluster_name} if self._cluster_name else event
        values: list[bytes] = []
        for key, template in self._templated:
            try:
                value = template.render(view)
            except RenderError as exc:
                raise PermanentSinkError(str(exc)) from None
            if "\r" in value or "\n" in value:
                raise PermanentSinkError(
                    f"receivers.{self.name}.webhook.headers.{key}: rendered value holds CR/LF")
            values.append(value.encode())
        values.append(payload)
        return _NL.join(values)

    async def start(self) -> None:
        """Open the keep-alive session (fixed headers, auth, TLS, timeout)."""
        self._http.get()

    async def close(self) -> None:
        """Close the session; `start` may open a new one."""
        await self._http.close()

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """Deliver in order; see the module docstring for what fails how."""
        if self._batch:
            return await self._send_arrays(payloads)
        return await self._send_each(payloads)

    async def _post(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        try:
            await send_checked(self._http.get(), self._method, self._endpoint, data=body,
                               headers=headers)
        except RetriableSinkError as exc:
            cause = exc.__cause__
            if cause is None:
                raise  # an HTTP answer: the message holds the status and body, not the URL
            # Transport errors quote the URL, and webhook URLs carry tokens in the path too
            # (Slack, Feishu): keep only the error's kind.
            errno = getattr(cause, "errno", None)
            reason = f": {os.strerror(errno)}" if isinstance(errno, int) else ""
            raise RetriableSinkError(
                f"{self._method} to receivers.{self.name} endpoint failed: "
                f"{type(cause).__name__}{reason}") from cause

    async def _send_each(self, payloads: Sequence[bytes]) -> list[ItemFailure]:
        failures: list[ItemFailure] = []
        names = [key for key, _ in self._templated]
        for index, payload in enumerate(payloads):
            headers: dict[str, str] | None = None
            body = payload
            if names:
                parts = payload.split(_NL, len(names))
                headers = {key: value.decode() for key, value in zip(names, parts, strict=False)}
                body = parts[-1]
            try:
                await self._post(body, headers)
            except PermanentSinkError as exc:
                failures.append(ItemFailure(index, exc))
            except SinkError as exc:
                if index == 0:
                    raise  # nothing delivered: the batch failed as a whole
                failures.append(ItemFailure(index, exc))
                failures.extend(ItemFailure(i, _not_sent(exc))
                                for i in range(index + 1, len(payloads)))
                break
        return failures

    async def _send_arrays(self, payloads: Sequence[bytes]) -> list[ItemFailure]:
        failures: list[ItemFailure] = []
        # A stack of (start, end) ranges, first range on top, so requests go in spool order.
        ranges = [(0, len(payloads))]
        while ranges:
            start, end = ranges.pop()
            try:
                await self._post(b"[" + b",".join(payloads[start:end]) + b"]")
            except PermanentSinkError as exc:
                if end - start == 1:
                    failures.append(ItemFailure(start, exc))
                else:
                    middle = (start + end) // 2
                    ranges += [(middle, end), (start, middle)]
            except SinkError as exc:
                if start == 0 and not failures and not ranges:
                    raise  # the first request of the batch: nothing delivered
                failures.extend(ItemFailure(i, exc) for i in range(start, end))
                failures.extend(ItemFailure(i, _not_sent(exc))
                                for s, e in ranges for i in range(s, e))
                break
        return failures


def _not_sent(cause: SinkError) -> RetriableSinkError:
    # Held back to keep order after an earlier event failed; retried together with it.
    return RetriableSinkError(f"not sent: an earlier event failed ({cause})",
                              retry_after=cause.retry_after)


def build_sink(config: WebhookSinkConfig, *, name: str, cluster_name: str) -> WebhookSink:
    """The registry's factory: a `WebhookSink` from the `webhook:` model."""
    return WebhookSink(name=name, endpoint=config.endpoint, headers=config.headers,
                       layout=config.layout, method=config.method, batch=config.batch,
                       timeout=config.timeout, content_type=config.content_type,
                       username=config.username, password=config.password,
                       bearer_token=config.bearer_token, tls=config.tls,
                       cluster_name=cluster_name)
