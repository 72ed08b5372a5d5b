"""The `feishu:` receiver: a Feishu / Lark custom bot.

POST `https://open.feishu.cn/open-apis/bot/v2/hook/<token>` with
`{"msg_type": "text", "content": {"text": ...}}` or `{"msg_type": "interactive", "card": ...}`
(a card with a header and a lark_md body, red for Warning events). With a `secret` (signature
verification) the body also carries `timestamp` (seconds, a string) and
`sign` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")), exactly as Feishu
documents it; both are added at send time since Feishu refuses timestamps over an hour off.
The request body is capped at 20 KB, so the text is cut well below. The answer is
`{"code": 0, "msg": "success"}` (older: `StatusCode`); 11232 and 9499 (frequency limits) are
retried, 19001 (invalid token) and 19021 (signature mismatch) wait in the spool, others
dead-letter the message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson

from eventpipe.sinks.feishu.config import FeishuSinkConfig
from eventpipe.sinks.im.sink import ImSink

LIMIT = 16000
"""Text limit in bytes: the 20 KB body less room for JSON escapes, the card and signature."""


def feishu_sign(secret: str, timestamp: int) -> str:
    """The `sign` body field, exactly as Feishu documents it (the key is the string)."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuSink(ImSink):
    """Posts one Feishu bot message per event."""

    service = "Feishu"
    config = FeishuSinkConfig
    code_keys = ("code", "StatusCode")
    message_keys = ("msg", "StatusMessage")
    rate_limited = frozenset({11232, 9499})
    credentials = frozenset({19001, 19021})

    def __init__(self, *, name: str, cfg: FeishuSinkConfig, cluster_name: str = "") -> None:
        self._card = cfg.msg_type == "interactive"
        super().__init__(name=name, url=cfg.webhook, cfg=cfg, cluster_name=cluster_name,
                         markdown=self._card, limit=LIMIT, title=cfg.title)
        self._secret = cfg.secret

    def message(self, event: dict[str, object]) -> object:
        """A text message, or an interactive card."""
        view = self._text.view(event)
        text = self._text.text(event, view)
        if not self._card:
            return {"msg_type": "text", "content": {"text": text}}
        heading = self._text.title(event, view)
        return {"msg_type": "interactive", "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": heading},
                       "template": "red" if event.get("type") == "Warning" else "blue"},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": text}}]}}

    def prepare(self, payload: bytes) -> tuple[str, bytes]:
        """Put `timestamp` and `sign` first in the body when a secret is set."""
        if not self._secret:
            return self._url, payload
        stamp = int(time.time())
        fields = orjson.dumps({"timestamp": str(stamp), "sign": feishu_sign(self._secret, stamp)})
        # Both are orjson objects: splice instead of parsing the message again.
        return self._url, fields[:-1] + b"," + payload[1:]


def build_sink(config: FeishuSinkConfig, *, name: str, cluster_name: str) -> FeishuSink:
    """The registry's factory: a `FeishuSink` from the `feishu:` model."""
    return FeishuSink(name=name, cfg=config, cluster_name=cluster_name)
