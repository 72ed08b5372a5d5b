"""Config of the `slack:` receiver: resmo's keys (`token`, `channel`, `message`, `color`,
`footer`, `title`, `author_name`, `fields`), all of them templates as in resmo, plus `webhookURL`
(incoming webhooks) and `apiURL` (the Web API base, for tests and Slack-compatible servers)."""

from __future__ import annotations

from pydantic import Field, model_validator

from eventpipe.sinks.im.config import ImSinkConfig
from eventpipe.sinks.urls import check_url


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
