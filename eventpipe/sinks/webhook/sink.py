"""The generic `webhook:` receiver: events as HTTP requests to any endpoint.

Two modes, chosen by `webhook.batch`:

- per event (default, resmo's behaviour): one request per event, sent one after another so the
  receiver sees spool order. A permanent answer (400...) fails only that event; at the first
  retriable failure (429, 5xx, refused) the batch stops there, and that event and every one after
  it are reported retriable, so a retry resends them in order. Nothing sent yet: the whole batch
  fails as one retriable error.
- batch: one request whose body is the JSON array of the batch's bodies. A permanent answer to
  a multi-event request is a `GroupRejectedError` (413: `TooLargeError`): the driver sends the
  halves again, so one event the endpoint cannot take dead-letters only itself, not its
  neighbours. The halves already sent stay sent; a retry after that resends only what was not.

The payload is a `WebhookRequest`: the body (`LineEncoder` output: the Event as served,
+ `clusterName`, or the layout as JSON) and the templated headers rendered for this event in
`encode` (the hot path runs there, once per event), checked there for CR/LF (header
injection). Fixed headers, auth and the Content-Type live on the session, built once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from eventpipe.delivery.contract import (
    GroupRejectedError,
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.http import (
    ReceiverSession,
    basic_auth,
    bearer_auth,
    send_checked,
    without_url,
)
from eventpipe.sinks.tls import TlsConfig
from eventpipe.sinks.webhook.config import WebhookSinkConfig, is_templated


class WebhookRequest(NamedTuple):
    """The webhook sink's payload: one event's body and its rendered templated headers."""

    body: bytes
    """The request body (per event) or one element of the JSON array (batch)."""
    headers: dict[str, str] | None
    """The templated headers rendered for this event; None without templated headers."""


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
            fixed["Authorization"] = basic_auth(username, password)
        elif bearer_token:
            fixed["Authorization"] = bearer_auth(bearer_token)
        self._templated = tuple(templated)
        self._http = ReceiverSession(timeout=timeout, tls=tls, headers=fixed)

    @property
    def needs_event(self) -> bool:
        """True with a layout or templated headers (both read the parsed event)."""
        return self._encoder.needs_event or bool(self._templated)

    def encode(self, event: dict[str, object] | None, body: bytes) -> WebhookRequest:
        """The request body and the rendered templated headers, if any."""
        payload = self._encoder.encode(event, body)
        if not self._templated:
            return WebhookRequest(payload, None)
        from eventpipe.layout import RenderError

        assert event is not None, "needs_event: the driver passes the parsed event"
        # A missing .ClusterName renders "" anyway: copy the event only when there is one.
        view = {**event, "clusterName": self._cluster_name} if self._cluster_name else event
        headers: dict[str, str] = {}
        for key, template in self._templated:
            try:
                value = template.render(view)
            except RenderError as exc:
                raise PermanentSinkError(str(exc)) from None
            if "\r" in value or "\n" in value:
                raise PermanentSinkError(
                    f"receivers.{self.name}.webhook.headers.{key}: rendered value holds CR/LF")
            headers[key] = value
        return WebhookRequest(payload, headers)

    async def start(self) -> None:
        """Open the keep-alive session (fixed headers, auth, TLS, timeout)."""
        self._http.get()

    async def close(self) -> None:
        """Close the session; `start` may open a new one."""
        await self._http.close()

    async def send(self, batch: list[WebhookRequest]) -> Sequence[ItemFailure]:
        """Deliver in order; see the module docstring for what fails how."""
        if self._batch:
            await self._send_array(batch)
            return []
        return await self._send_each(batch)

    async def _post(self, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        try:
            await send_checked(self._http.get(), self._method, self._endpoint, data=body,
                               headers=headers)
        except RetriableSinkError as exc:
            told = without_url(exc, f"{self._method} to receivers.{self.name} endpoint")
            if told is exc:
                raise
            raise told from exc.__cause__

    async def _send_each(self, payloads: Sequence[WebhookRequest]) -> list[ItemFailure]:
        failures: list[ItemFailure] = []
        for index, (body, headers) in enumerate(payloads):
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

    async def _send_array(self, payloads: Sequence[WebhookRequest]) -> None:
        try:
            await self._post(b"[" + b",".join([p.body for p in payloads]) + b"]")
        except GroupRejectedError:
            raise  # 413: the driver halves it
        except PermanentSinkError as exc:
            if len(payloads) == 1:
                raise
            # Which event the endpoint refused is unknown: the driver finds it by halving.
            raise GroupRejectedError(str(exc)) from exc


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
