"""Config of the `wecom:` receiver (a WeCom group robot)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eventpipe.sinks.im.config import RobotSinkConfig


class WecomSinkConfig(RobotSinkConfig):
    """WeCom (WeChat Work) group robot: `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=`."""

    msg_type: Literal["text", "markdown"] = Field(
        default="text", alias="msgType",
        description="`text` (2048 bytes, mentions allowed) or `markdown` (4096 bytes).")
    mentioned_list: list[str] = Field(
        default_factory=list, alias="mentionedList",
        description="User ids to @mention (text only); `@all` mentions everyone.")
    mentioned_mobile_list: list[str] = Field(
        default_factory=list, alias="mentionedMobileList",
        description="Mobile numbers to @mention (text only); `@all` mentions everyone.")

    @model_validator(mode="after")
    def _mentions(self) -> WecomSinkConfig:
        if self.msg_type == "markdown" and (self.mentioned_list or self.mentioned_mobile_list):
            raise ValueError("mentionedList/mentionedMobileList: WeCom markdown messages "
                             "cannot mention; use msgType: text")
        return self
