"""The `wecom:` receiver: a WeCom (WeChat Work) group robot.

POST `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY` with
`{"msgtype": "text", "text": {"content": ..., "mentioned_list": [...],
"mentioned_mobile_list": [...]}}` or `{"msgtype": "markdown", "markdown": {"content": ...}}`.
WeCom caps text content at 2048 bytes and markdown at 4096: longer messages are cut and say so.
The answer is always HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; 45009 (over the robot's
20 messages a minute) is retried, 93000 (invalid webhook URL: a removed robot or wrong key)
waits in the spool, any other code dead-letters that message.
"""

from __future__ import annotations

from eventpipe.sinks.im.sink import ImSink
from eventpipe.sinks.wecom.config import WecomSinkConfig

LIMITS = {"text": 2048, "markdown": 4096}
"""Content limit in bytes per msgtype, as WeCom documents them."""


class WecomSink(ImSink):
    """Posts one WeCom robot message per event."""

    service = "WeCom"
    config = WecomSinkConfig
    rate_limited = frozenset({45009})
    credentials = frozenset({93000})

    def __init__(self, *, name: str, cfg: WecomSinkConfig, cluster_name: str = "") -> None:
        super().__init__(name=name, url=cfg.webhook, cfg=cfg, cluster_name=cluster_name,
                         markdown=cfg.msg_type == "markdown", limit=LIMITS[cfg.msg_type])
        self._type = cfg.msg_type
        mentions: dict[str, list[str]] = {}
        if cfg.mentioned_list:
            mentions["mentioned_list"] = list(cfg.mentioned_list)
        if cfg.mentioned_mobile_list:
            mentions["mentioned_mobile_list"] = list(cfg.mentioned_mobile_list)
        self._mentions = mentions

    def message(self, event: dict[str, object]) -> object:
        """`{"msgtype": T, T: {"content": ...}}` (+ mentions for text)."""
        return {"msgtype": self._type,
                self._type: {"content": self._text.text(event), **self._mentions}}


def build_sink(config: WecomSinkConfig, *, name: str, cluster_name: str) -> WecomSink:
    """The registry's factory: a `WecomSink` from the `wecom:` model."""
    return WecomSink(name=name, cfg=config, cluster_name=cluster_name)
