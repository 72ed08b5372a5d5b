"""The `dingtalk:` receiver: a DingTalk custom robot.

POST `https://oapi.dingtalk.com/robot/send?access_token=TOKEN` with
`{"msgtype": "text", "text": {"content": ...}, "at": {"atMobiles": [...], "isAtAll": false}}`
or `{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}, "at": {...}}`. A markdown
message shows its mentions only when the text holds `@<mobile>`, so they are appended.
With a `secret` (signature security) each request carries `&timestamp=<ms>&sign=<sign>`, where
sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))), made at send
time because DingTalk refuses timestamps more than an hour off.
Content is capped at 20000 bytes. The answer is HTTP 200 with `{"errcode": 0}`; 130101 (sending
too fast) is retried, 300001 (no such token) waits in the spool, others dead-letter the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

from eventpipe.sinks.dingtalk.config import DingtalkSinkConfig
from eventpipe.sinks.im.sink import ImSink

LIMIT = 20000
"""DingTalk's content limit in bytes."""


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value, URL-encoded, exactly as DingTalk documents it."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


class DingtalkSink(ImSink):
    """Posts one DingTalk robot message per event."""

    service = "DingTalk"
    config = DingtalkSinkConfig
    rate_limited = frozenset({130101})
    credentials = frozenset({300001})

    def __init__(self, *, name: str, cfg: DingtalkSinkConfig, cluster_name: str = "") -> None:
        markdown = cfg.msg_type == "markdown"
        mentions = " ".join(f"@{mobile}" for mobile in cfg.at_mobiles)
        self._suffix = f"\n\n{mentions}" if markdown and mentions else ""
        super().__init__(name=name, url=cfg.webhook, cfg=cfg, cluster_name=cluster_name,
                         markdown=markdown, limit=LIMIT - len(self._suffix.encode()),
                         title=cfg.title)
        self._markdown = markdown
        self._secret = cfg.secret
        self._at = {"atMobiles": list(cfg.at_mobiles), "isAtAll": cfg.is_at_all}

    def message(self, event: dict[str, object]) -> object:
        """The text or markdown message with its `at` block."""
        view = self._text.view(event)
        text = self._text.text(event, view)
        if not self._markdown:
            return {"msgtype": "text", "text": {"content": text}, "at": self._at}
        heading = self._text.title(event, view)
        return {"msgtype": "markdown",
                "markdown": {"title": heading, "text": text + self._suffix}, "at": self._at}

    def prepare(self, payload: bytes) -> tuple[str, bytes]:
        """Sign the URL (timestamp in ms + sign) when a secret is set."""
        if not self._secret:
            return self._url, payload
        stamp = int(time.time() * 1000)
        joiner = "&" if "?" in self._url else "?"
        sign = dingtalk_sign(self._secret, stamp)
        return f"{self._url}{joiner}timestamp={stamp}&sign={sign}", payload


def build_sink(config: DingtalkSinkConfig, *, name: str, cluster_name: str) -> DingtalkSink:
    """The registry's factory: a `DingtalkSink` from the `dingtalk:` model."""
    return DingtalkSink(name=name, cfg=config, cluster_name=cluster_name)
