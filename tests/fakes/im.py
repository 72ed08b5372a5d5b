"""aiohttp fakes of the IM bot APIs, checking requests the way the real services do.

Each fake is a `WebhookReceiver` (requests recorded, `fail_next` for HTTP failures,
`stop()`/`start()` for outages, `wait_for`) whose answers are the bot's own:

- `WecomBot`: `/cgi-bin/webhook/send?key=K`; unknown key -> errcode 93000; msgtype text or
  markdown (else 40008); empty content -> 44004; text over 2048 bytes / markdown over 4096 ->
  45002; success `{"errcode": 0, "errmsg": "ok"}`; rate limit -> 45009.
- `DingtalkBot`: `/robot/send?access_token=T`; unknown token -> 300001; with a secret,
  `timestamp` (ms) within an hour and `sign` = urlencoded base64 HMAC-SHA256(secret,
  "ts\\nsecret") else 310000; text.content / markdown.title+text required (40035); content over
  20000 bytes -> 460101; rate limit -> 130101.
- `FeishuBot`: `/open-apis/bot/v2/hook/<token>`; unknown token -> 19001; with a secret, body
  `timestamp` (s) within an hour and `sign` = base64 HMAC-SHA256(key="ts\\nsecret", msg="")
  else 19021; body over 20 KB or a bad msg_type/content -> 19002; rate limit -> 11232.
- Slack and Bark: tests.fakes.im_push.

Rate limit switch: `limit(n, per)` accepts n messages per `per` seconds (sliding window), then
answers the bot's rate-limit code until the window frees up; `limit(0)` refuses everything.
`delivered` holds the accepted requests, `messages()` their JSON bodies; `clock` is the time
the signature checks use (a test may shift it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, ClassVar

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.webhook import Recorded, WebhookReceiver

Answer = tuple[int, Any]
"""HTTP status and JSON body (a str body is sent as text)."""
HOUR = 3600.0


class BotFake(WebhookReceiver):
    """What every bot fake shares: the rate-limit switch and the answer plumbing."""

    hook_path: ClassVar[str] = "/"
    """Path (and query) of the bot's webhook URL; `{token}` is the token."""
    ok_answer: ClassVar[Answer] = (200, "ok")
    rate_answer: ClassVar[Answer] = (429, "rate limited")

    def __init__(self, *, token: str = "bot-token", secret: str = "") -> None:
        super().__init__(require_json=False)
        self.token = token
        self.secret = secret
        self.delivered: list[Recorded] = []
        self.clock: Callable[[], float] = time.time
        self._limit: tuple[int, float] | None = None
        self._times: list[float] = []

    def limit(self, n: int | None, per: float = 60.0) -> None:
        """Accept `n` messages per `per` seconds, then the rate-limit answer (None: no limit)."""
        self._limit = None if n is None else (n, per)

    @property
    def accepted(self) -> list[Recorded]:
        """Requests the bot accepted (a 200 with an error code is not accepted)."""
        return self.delivered

    def messages(self) -> list[Any]:
        """JSON bodies of the accepted requests, in order."""
        return [r.json() for r in self.delivered]

    def hook(self) -> str:
        """The bot's webhook URL, token included."""
        return self.url(self.hook_path.format(token=self.token))

    def check(self, record: Recorded) -> Answer | None:
        """The error answer for a request the real API would refuse; None if it is valid."""
        raise NotImplementedError

    def ok(self, r: Recorded) -> Answer:
        """The success answer."""
        return self.ok_answer

    def rate_limited(self, r: Recorded) -> Answer:
        """The rate-limit answer."""
        return self.rate_answer

    def _over_limit(self) -> bool:
        if self._limit is None:
            return False
        n, per = self._limit
        now = time.monotonic()
        self._times = [t for t in self._times if now - t < per]
        if len(self._times) >= n:
            return True
        self._times.append(now)
        return False

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        probe = Recorded(request.method, request.path, dict(request.query),
                         CIMultiDict(request.headers), body, 0, time.monotonic())
        headers: dict[str, str] = {}
        error: Answer | None
        if self._fail:
            status, retry_after = self._fail.pop(0)
            error = (status, f"injected failure {status}")
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
        else:
            error = self.check(probe)
            if error is None and self._over_limit():
                error = self.rate_limited(probe)
        status, answer = error or self.ok(probe)
        record = Recorded(probe.method, probe.path, probe.query, probe.headers, body, status,
                          probe.at)
        self.requests.append(record)
        if error is None:
            self.delivered.append(record)
        self.changes.notify()
        if isinstance(answer, str):
            return web.Response(status=status, text=answer, headers=headers)
        return web.json_response(answer, status=status, headers=headers)

    def fresh(self, stamp: float) -> bool:
        """Within an hour of the fake's clock, as DingTalk and Feishu require."""
        return abs(self.clock() - stamp) <= HOUR


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def hmac_b64(key: bytes, msg: bytes) -> str:
    """base64(HMAC-SHA256(key, msg))."""
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


class WecomBot(BotFake):
    """WeCom group robot."""

    hook_path = "/cgi-bin/webhook/send?key={token}"
    ok_answer = 200, {"errcode": 0, "errmsg": "ok"}
    rate_answer = 200, {"errcode": 45009, "errmsg": "api freq out of limit"}

    def check(self, r: Recorded) -> Answer | None:
        """See the module docstring."""
        if r.path != "/cgi-bin/webhook/send" or r.query.get("key") != self.token:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        body = json_object(r.body)
        kind = body.get("msgtype") if body else None
        if body is None or kind not in ("text", "markdown") or not isinstance(body.get(kind),
                                                                             dict):
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        content = body[kind].get("content")
        if not isinstance(content, str) or not content:
            return 200, {"errcode": 44004, "errmsg": "empty content"}
        if len(content.encode()) > (2048 if kind == "text" else 4096):
            return 200, {"errcode": 45002, "errmsg": "content size out of limit"}
        return None


class DingtalkBot(BotFake):
    """DingTalk custom robot."""

    hook_path = "/robot/send?access_token={token}"
    ok_answer = 200, {"errcode": 0, "errmsg": "ok"}
    rate_answer = 200, {"errcode": 130101,
                        "errmsg": "send too fast, exceed 20 times per minute"}

    def check(self, r: Recorded) -> Answer | None:
        """See the module docstring."""
        if r.path != "/robot/send" or r.query.get("access_token") != self.token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        if self.secret:
            stamp, sign = r.query.get("timestamp", ""), r.query.get("sign", "")
            if not stamp.isdigit() or not self.fresh(int(stamp) / 1000):
                return 200, {"errcode": 310000, "errmsg": "invalid timestamp"}
            # aiohttp has already url-decoded the query value, as DingTalk does.
            expected = hmac_b64(self.secret.encode(), f"{stamp}\n{self.secret}".encode())
            if not hmac.compare_digest(sign, expected):
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
        body = json_object(r.body) or {}
        kind = body.get("msgtype")
        part = body.get(kind) if isinstance(kind, str) else None
        need = {"text": ("content",), "markdown": ("title", "text")}.get(str(kind))
        if need is None or not isinstance(part, dict) or not all(
                isinstance(part.get(k), str) and part[k] for k in need):
            return 200, {"errcode": 40035, "errmsg": "missing parameter"}
        if len(str(part.get("content", part.get("text"))).encode()) > 20000:
            return 200, {"errcode": 460101, "errmsg": "message too long, exceed 20000 bytes"}
        return None


class FeishuBot(BotFake):
    """Feishu / Lark custom bot."""

    hook_path = "/open-apis/bot/v2/hook/{token}"
    ok_answer = 200, {"code": 0, "data": {}, "msg": "success"}
    rate_answer = 200, {"code": 11232, "msg": "frequency limited psm"}

    def check(self, r: Recorded) -> Answer | None:
        """See the module docstring."""
        if r.path != f"/open-apis/bot/v2/hook/{self.token}":
            return 200, {"code": 19001,
                         "msg": "param invalid: incoming webhook access token invalid"}
        body = json_object(r.body)
        if body is None or len(r.body) > 20 * 1024:
            return 200, {"code": 19002, "msg": "params error: body invalid or over 20 KB"}
        if self.secret:
            stamp, sign = str(body.get("timestamp", "")), body.get("sign")
            expected = hmac_b64(f"{stamp}\n{self.secret}".encode(), b"")
            if not (stamp.isdigit() and self.fresh(int(stamp)) and sign == expected):
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not "
                             "within one hour from current time"}
        kind = body.get("msg_type")
        content = body.get("content")
        content = content if isinstance(content, dict) else {}
        if not ((kind == "text" and isinstance(content.get("text"), str) and content["text"])
                or (kind == "interactive" and isinstance(body.get("card"), dict))):
            return 200, {"code": 19002, "msg": "params error: msg_type or content"}
        return None


