"""What every IM bot sink shares: one message per event, posted in order, answers classified.

The bot APIs take one message per request (no batch API), so `send` posts the batch's messages
one after another in spool order:

- a message the bot rejects (HTTP 400, or an `errcode` that is neither a rate limit nor a
  credentials problem) fails alone: an `ItemFailure` the driver dead-letters;
- at the first retriable failure (transport error, 429/5xx, the bot's rate-limit code) sending
  stops; that message and every later one are reported retriable, so the retry resends them in
  order and a rate-limited message arrives later rather than never. Nothing sent yet: the batch
  fails as a whole (`RetriableSinkError`) and the driver backs off.
- error codes that mean "wrong key / token / signature" are retriable too, as 401/403 are in
  `eventpipe.sinks.http`: the events wait in the spool for an operator instead of filling dead
  letters.

A subclass builds the JSON body of one event (`message`, run in `encode`, the hot path), may
sign the request at send time (`prepare`: a signature made in `encode` could be stale by the
time a retry goes out), and reads the bot's answer (`api_error`). Storm control (throttling)
belongs to the driver; nothing here keeps per-event state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
import orjson

from eventpipe.delivery.contract import (
    ItemFailure,
    PermanentSinkError,
    RetriableSinkError,
    SinkError,
)
from eventpipe.sinks.http import ReceiverSession, request, status_error, without_url
from eventpipe.sinks.im.config import ImSinkConfig
from eventpipe.sinks.im.message import MessageText

JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json; charset=utf-8"}


class ImSink(ABC):
    """Base of the bot sinks; see the module docstring."""

    service: ClassVar[str] = "IM bot"
    """The service's name in error messages ("WeCom")."""
    config: ClassVar[type[ImSinkConfig]] = ImSinkConfig
    """The config model this sink is built from."""
    code_keys: ClassVar[tuple[str, ...]] = ("errcode",)
    """Keys of the answer's error code, first present wins (0 = success)."""
    message_keys: ClassVar[tuple[str, ...]] = ("errmsg",)
    """Keys of the answer's error message."""
    rate_limited: ClassVar[frozenset[int]] = frozenset()
    """Error codes meaning "too many messages": retried."""
    credentials: ClassVar[frozenset[int]] = frozenset()
    """Error codes meaning wrong key / token / signature: retried (waits for an operator)."""

    def __init__(self, *, name: str, url: str, cfg: ImSinkConfig, cluster_name: str,
                 markdown: bool, limit: int, title: str = "", where: str = "template",
                 headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self._url = url
        self._text = MessageText(name=name, template=cfg.template, markdown=markdown,
                                 limit=limit, cluster_name=cluster_name, title_template=title,
                                 where=where)
        self._headers = {**JSON_HEADERS, **(headers or {})}
        self._http = ReceiverSession(timeout=cfg.timeout, tls=cfg.tls,
                                     headers=self._headers)

    @property
    def needs_event(self) -> bool:
        """Always: the message is rendered from the parsed event."""
        return True

    @abstractmethod
    def message(self, event: dict[str, object]) -> object:
        """The JSON body (before signing) for one event; each bot module defines it."""

    def prepare(self, payload: bytes) -> tuple[str, bytes]:
        """URL and body of the request for one encoded message (signing goes here)."""
        return self._url, payload

    def api_error(self, answer: Any) -> SinkError | None:
        """The error a 2xx answer (parsed JSON, None if not JSON) reports, if any."""
        answer = answer if isinstance(answer, dict) else {}
        code = next((answer[k] for k in self.code_keys if k in answer), None)
        message = next((answer[k] for k in self.message_keys if k in answer), "")
        return errcode_error(self.service, code, message, rate_limited=self.rate_limited,
                             credentials=self.credentials)

    def encode(self, event: dict[str, object] | None, body: bytes) -> bytes:
        """The message for one event as JSON bytes."""
        assert event is not None, "needs_event: the driver passes the parsed event"
        return orjson.dumps(self.message(event))

    async def start(self) -> None:
        """Open the keep-alive session."""
        self._http.get()

    async def close(self) -> None:
        """Close the session; `start` may open a new one."""
        await self._http.close()

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """Post each message in order; see the module docstring for what fails how."""
        session = self._http.get()
        failures: list[ItemFailure] = []
        for index, payload in enumerate(payloads):
            error = await self._post(session, payload)
            if error is None:
                continue
            if not error.retriable:
                failures.append(ItemFailure(index, error))
                continue
            if index == 0:
                raise error  # nothing delivered: the batch failed as a whole
            held = RetriableSinkError(f"not sent: an earlier message failed ({error})",
                                      retry_after=error.retry_after)
            failures.append(ItemFailure(index, error))
            failures.extend(ItemFailure(i, held) for i in range(index + 1, len(payloads)))
            break
        return failures

    async def _post(self, session: aiohttp.ClientSession, payload: bytes) -> SinkError | None:
        url, data = self.prepare(payload)
        try:
            status, body, headers = await request(session, "POST", url, data=data)
        except RetriableSinkError as exc:  # bot URLs carry the key: never quote them
            return without_url(exc, f"POST to {self.service} (receivers.{self.name})")
        error = status_error(status, body, headers, what=f"{self.service} answered ")
        if error is not None:
            return error
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        return self.api_error(answer)


def errcode_error(service: str, code: object, message: object, *,
                  rate_limited: Collection[int], credentials: Collection[int] = ()
                  ) -> SinkError | None:
    """The error for a bot's `errcode`/`code` answer: None for 0, retriable for a rate limit
    or a credentials code, permanent otherwise (the message itself was refused)."""
    if code == 0:
        return None
    text = f"{service} errcode {code}: {str(message)[:300]}"
    if code in rate_limited:
        return RetriableSinkError(f"{text} (rate limited)")
    if code in credentials:
        return RetriableSinkError(f"{text} (check the receiver's URL, key and secret)")
    if code is None:
        return PermanentSinkError(f"{service}: unexpected answer without an error code")
    return PermanentSinkError(text)
