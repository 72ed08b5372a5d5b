"""Config of the IM bot receivers: `wecom`, `dingtalk`, `feishu`, `slack`, `bark`.

Each bot posts one message per event. What they share: `template` (a Go template replacing the
default message text), `timeout` and `tls`; the group-robot bots add their `webhook` URL (which
holds the robot's key or token) and `msgType`. `slack` keeps resmo's keys (`token`, `channel`,
`message`, `color`, `footer`, `title`, `author_name`, `fields`), all of them templates as in
resmo, and adds `webhookURL` (incoming webhooks) and `apiURL` (the Web API base, for tests and
Slack-compatible servers). `bark` takes bark-server's push fields.

Templates are compiled here, at load time, so a broken one names its key and YAML line.
URLs, keys, tokens and secrets are left out of reprs and error messages.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from eventpipe.config.sinks import SinkConfig
from eventpipe.config.tls import TlsConfig
from eventpipe.config.urls import check_url
from eventpipe.core.units import Duration

_TEMPLATE_DOC = ("Go template replacing the default message text (cluster, type, namespace, "
                 "object, reason, count, last seen, message), e.g. `{{ .Reason }}: "
                 "{{ .Message }}`. Texts over the bot's size limit are cut and end with "
                 "\"…(truncated)\".")
_SECRET_DOC = ("Signing secret of a robot with signature security (\"SEC...\"); requests are "
               "signed with HMAC-SHA256 over the current timestamp. Never logged.")


def check_templates(values: dict[str, str]) -> None:
    """Compile each non-empty templated value; LayoutError (a ValueError) names the key."""
    from eventpipe.layout import compile_template

    for key, source in values.items():
        if source:
            compile_template(source, where=key)


class ImSinkConfig(SinkConfig):
    """What every IM bot receiver takes."""

    template: str = Field(default="", description=_TEMPLATE_DOC)
    timeout: Duration = Field(default=10.0, gt=0, description="Total time allowed for one "
                              "request.")
    tls: TlsConfig | None = Field(default=None, description="TLS settings for https URLs.")

    def templates(self) -> dict[str, str]:
        """Templated keys -> source, checked at load time (subclasses add theirs)."""
        return {"template": self.template}

    @model_validator(mode="after")
    def _compile(self) -> ImSinkConfig:
        check_templates(self.templates())
        return self


class RobotSinkConfig(ImSinkConfig):
    """A group robot addressed by one webhook URL that carries its key."""

    webhook: str = Field(min_length=1, repr=False,
                         description="The robot's webhook URL, key/token included. Never "
                         "logged.")

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str) -> str:
        return check_url(value, "webhook")


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


class DingtalkSinkConfig(RobotSinkConfig):
    """DingTalk custom robot: `https://oapi.dingtalk.com/robot/send?access_token=`."""

    msg_type: Literal["text", "markdown"] = Field(
        default="text", alias="msgType", description="`text` or `markdown` (title + text).")
    secret: str = Field(default="", repr=False, description=_SECRET_DOC)
    title: str = Field(
        default="", description="markdown: Go template of the title shown in notifications; "
        "default \"<type> <reason>: <namespace>/<kind>/<name>\".")
    at_mobiles: list[str] = Field(default_factory=list, alias="atMobiles",
                                  description="Mobile numbers to @mention.")
    is_at_all: bool = Field(default=False, alias="isAtAll", description="@mention everyone.")

    def templates(self) -> dict[str, str]:
        """`template` and `title`."""
        return {**super().templates(), "title": self.title}


class FeishuSinkConfig(RobotSinkConfig):
    """Feishu / Lark custom bot: `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`."""

    msg_type: Literal["text", "interactive"] = Field(
        default="text", alias="msgType",
        description="`text`, or `interactive`: a card with a title and a markdown body.")
    secret: str = Field(default="", repr=False, description=_SECRET_DOC)
    title: str = Field(
        default="", description="interactive: Go template of the card title; default "
        "\"<type> <reason>: <namespace>/<kind>/<name>\".")

    def templates(self) -> dict[str, str]:
        """`template` and `title`."""
        return {**super().templates(), "title": self.title}


class SlackSinkConfig(ImSinkConfig):
    """Slack: chat.postMessage with a bot token (resmo's keys), or an incoming webhook."""

    template: str = Field(
        default="", alias="message",
        description="resmo: Go template of the message text (`template` is accepted too); "
        "default: the eventpipe message. `&`, `<`, `>` are escaped as resmo does.")
    token: str = Field(default="", repr=False,
                       description="resmo: bot token (xoxb-...) for chat.postMessage. Never "
                       "logged.")
    channel: str = Field(default="", description="resmo: Go template of the channel "
                         "(`#ops`, an id, or `@{{ .InvolvedObject.Labels.owner }}`).")
    color: str = Field(default="", description="resmo: Go template of the attachment color.")
    footer: str = Field(default="", description="resmo: Go template of the attachment footer.")
    title: str = Field(default="", description="resmo: Go template of the attachment title.")
    author_name: str = Field(default="", description="resmo: Go template of the attachment "
                             "author.")
    fields: dict[str, str] = Field(
        default_factory=dict, description="resmo: attachment fields, title -> Go template, "
        "sorted by title. Any attachment key given adds one attachment.")
    webhook_url: str = Field(
        default="", alias="webhookURL", repr=False,
        description="eventpipe: an incoming webhook URL, instead of `token`. Never logged.")
    api_url: str = Field(
        default="https://slack.com/api", alias="apiURL",
        description="eventpipe: the Web API base URL (tests, Slack-compatible servers).")

    def templates(self) -> dict[str, str]:
        """Every resmo key is a template."""
        keys = {"channel": self.channel, "color": self.color, "footer": self.footer,
                "title": self.title, "author_name": self.author_name}
        keys.update({f"fields.{k}": v for k, v in self.fields.items()})
        return {"message": self.template, **keys}

    @model_validator(mode="after")
    def _mode(self) -> SlackSinkConfig:
        if self.webhook_url:
            check_url(self.webhook_url, "webhookURL")
            if self.token:
                raise ValueError("token and webhookURL: give one (chat.postMessage or an "
                                 "incoming webhook)")
        elif not self.token:
            raise ValueError("token: required (or webhookURL for an incoming webhook)")
        elif not self.channel:
            raise ValueError("channel: required with token")
        check_url(self.api_url, "apiURL")
        return self


class BarkSinkConfig(ImSinkConfig):
    """Bark iOS push (finab/bark-server): POST <serverURL>/push."""

    template: str = Field(default="", alias="body",
                          description="Go template of the push body (`template` is accepted "
                          "too); default: the eventpipe message.")
    server_url: str = Field(default="https://api.day.app", alias="serverURL",
                            description="bark-server base URL (self-hosted or the public "
                            "one).")
    device_key: str = Field(min_length=1, alias="deviceKey", repr=False,
                            description="The device key of the Bark app. Never logged.")
    title: str = Field(default="", description="Go template of the push title; default "
                       "\"<type> <reason>: <namespace>/<kind>/<name>\".")
    group: str = Field(default="", description="Group the pushes under this name.")
    level: Literal["", "active", "timeSensitive", "passive", "critical"] = Field(
        default="", description="Interruption level: active, timeSensitive, passive, critical.")
    icon: str = Field(default="", description="URL of the icon to show.")
    sound: str = Field(default="", description="Sound name.")
    url: str = Field(default="", description="URL opened when the push is tapped.")

    def templates(self) -> dict[str, str]:
        """`body` and `title`."""
        return {"body": self.template, "title": self.title}

    @field_validator("server_url")
    @classmethod
    def _server_url(cls, value: str) -> str:
        return check_url(value, "serverURL")
