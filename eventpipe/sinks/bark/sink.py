"""The `bark:` receiver: an iOS push through Bark (finab/bark-server).

POST `<serverURL>/push` (default the public https://api.day.app, or a self-hosted server) with
`{"device_key": ..., "title": ..., "body": ..., "group", "level", "icon", "sound", "url"}`
(only the keys set). The server answers `{"code": 200, "message": "success"}`; errors come with
the same HTTP status in `code` (400 for an unknown device key, 500 when APNs refused), which
`eventpipe.sinks.http` classifies. APNs caps a push at 4 KB, so the body is cut at 3000 bytes.
"""

from __future__ import annotations

from typing import Any

from eventpipe.delivery.contract import SinkError
from eventpipe.sinks.bark.config import BarkSinkConfig
from eventpipe.sinks.im.sink import ImSink

LIMIT = 3000
"""Body limit in bytes, leaving room in the 4 KB APNs payload for the title and options."""


class BarkSink(ImSink):
    """Pushes one Bark notification per event."""

    service = "Bark"
    config = BarkSinkConfig
    code_keys = ("code",)
    message_keys = ("message",)

    def __init__(self, *, name: str, cfg: BarkSinkConfig, cluster_name: str = "") -> None:
        super().__init__(name=name, url=cfg.server_url.rstrip("/") + "/push", cfg=cfg,
                         cluster_name=cluster_name, markdown=False, limit=LIMIT,
                         title=cfg.title, where="body")
        options = {"device_key": cfg.device_key, "group": cfg.group, "level": cfg.level,
                   "icon": cfg.icon, "sound": cfg.sound, "url": cfg.url}
        self._options = {key: value for key, value in options.items() if value}

    def message(self, event: dict[str, object]) -> object:
        """The push for one event."""
        view = self._text.view(event)
        return {**self._options, "title": self._text.title(event, view),
                "body": self._text.text(event, view)}

    def api_error(self, answer: Any) -> SinkError | None:
        """`code` 200 is success (not 0, as the other bots)."""
        if isinstance(answer, dict) and answer.get("code") == 200:
            return None
        return super().api_error(answer)


def build_sink(config: BarkSinkConfig, *, name: str, cluster_name: str) -> BarkSink:
    """The registry's factory: a `BarkSink` from the `bark:` model."""
    return BarkSink(name=name, cfg=config, cluster_name=cluster_name)
