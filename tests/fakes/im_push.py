"""aiohttp fakes of Slack (Web API chat.postMessage and incoming webhooks) and bark-server.

See tests.fakes.im for the shared behaviour (rate-limit switch, `delivered`, `messages()`):

- `SlackApi`: `/api/chat.postMessage` with `Authorization: Bearer <token>` (missing ->
  not_authed, wrong -> invalid_auth), a channel (else channel_not_found), text or attachments
  (else no_text); always HTTP 200 with `{"ok": ...}`; rate limit -> `ratelimited`.
  `/services/...` is an incoming webhook: `ok` text, 400 `invalid_payload`, 429 when limited.
- `BarkServer`: `/push` with a registered `device_key` (else HTTP 400 code 400), a payload
  over 4 KB -> 500 like an APNs refusal; success `{"code": 200}`; rate limit -> HTTP 429.
"""

from __future__ import annotations

import time

from tests.fakes.im import Answer, BotFake, json_object
from tests.fakes.webhook import Recorded


class SlackApi(BotFake):
    """Slack Web API chat.postMessage and incoming webhooks on one server."""

    def api(self) -> str:
        """The Web API base URL (the sink's apiURL)."""
        return self.url("/api")

    def incoming(self) -> str:
        """An incoming webhook URL."""
        return self.url("/services/T000/B000/XXXX")

    def check(self, r: Recorded) -> Answer | None:
        """See the module docstring."""
        body = json_object(r.body) or {}
        has_text = bool(body.get("text")) or bool(body.get("attachments"))
        if r.path.startswith("/services/"):
            return None if has_text else (400, "invalid_payload")
        auth = r.headers.get("Authorization", "")
        if r.path != "/api/chat.postMessage" or not auth:
            return 200, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}
        channel = body.get("channel")
        if not isinstance(channel, str) or channel in ("", "@", "#"):
            return 200, {"ok": False, "error": "channel_not_found"}
        return None if has_text else (200, {"ok": False, "error": "no_text"})

    def ok(self, r: Recorded) -> Answer:
        """ok true (incoming webhooks: the text "ok")."""
        if r.path.startswith("/services/"):
            return 200, "ok"
        return 200, {"ok": True, "channel": "C0123", "ts": "1700000000.000100"}

    def rate_limited(self, r: Recorded) -> Answer:
        """ratelimited (incoming webhooks: HTTP 429)."""
        if r.path.startswith("/services/"):
            return 429, "rate_limited"
        return 200, {"ok": False, "error": "ratelimited"}


class BarkServer(BotFake):
    """finab/bark-server's push API."""

    rate_answer = 429, {"code": 429, "message": "too many requests"}

    def __init__(self, *, device_keys: tuple[str, ...] = ("bark-device",)) -> None:
        super().__init__(token="")
        self.device_keys = device_keys

    def check(self, r: Recorded) -> Answer | None:
        """See the module docstring."""
        body = json_object(r.body)
        if r.path != "/push" or body is None:
            return 400, {"code": 400, "message": "request bind failed"}
        if body.get("device_key") not in self.device_keys:
            return 400, {"code": 400, "message": "failed to get device token: not found"}
        if len(r.body) > 4096:
            return 500, {"code": 500, "message": "push failed: PayloadTooLarge"}
        return None

    def ok(self, r: Recorded) -> Answer:
        """code 200."""
        return 200, {"code": 200, "message": "success", "timestamp": int(time.time())}
