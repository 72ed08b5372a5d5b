"""Config of the `dingtalk:` receiver (a DingTalk custom robot)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from eventpipe.sinks.im.config import SECRET_DOC, RobotSinkConfig


class DingtalkSinkConfig(RobotSinkConfig):
    """DingTalk custom robot: `https://oapi.dingtalk.com/robot/send?access_token=`."""

    msg_type: Literal["text", "markdown"] = Field(
        default="text", alias="msgType", description="`text` or `markdown` (title + text).")
    secret: str = Field(default="", repr=False, description=SECRET_DOC)
    title: str = Field(
        default="", description="markdown: Go template of the title shown in notifications; "
        "default \"<type> <reason>: <namespace>/<kind>/<name>\".")
    at_mobiles: list[str] = Field(default_factory=list, alias="atMobiles",
                                  description="Mobile numbers to @mention.")
    is_at_all: bool = Field(default=False, alias="isAtAll", description="@mention everyone.")

    def templates(self) -> dict[str, str]:
        """`template` and `title`."""
        return {**super().templates(), "title": self.title}
