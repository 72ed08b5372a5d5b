"""Config of the `feishu:` receiver (a Feishu / Lark custom bot)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from eventpipe.sinks.im.config import SECRET_DOC, RobotSinkConfig


class FeishuSinkConfig(RobotSinkConfig):
    """Feishu / Lark custom bot: `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`."""

    msg_type: Literal["text", "interactive"] = Field(
        default="text", alias="msgType",
        description="`text`, or `interactive`: a card with a title and a markdown body.")
    secret: str = Field(default="", repr=False, description=SECRET_DOC)
    title: str = Field(
        default="", description="interactive: Go template of the card title; default "
        "\"<type> <reason>: <namespace>/<kind>/<name>\".")

    def templates(self) -> dict[str, str]:
        """`template` and `title`."""
        return {**super().templates(), "title": self.title}
