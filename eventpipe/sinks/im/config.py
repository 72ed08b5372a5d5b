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

from pydantic import Field, field_validator, model_validator

from eventpipe.core.units import Duration
from eventpipe.sinks.config import SinkConfig
from eventpipe.sinks.tls import TlsConfig
from eventpipe.sinks.urls import check_url

_TEMPLATE_DOC = ("Go template replacing the default message text (cluster, type, namespace, "
                 "object, reason, count, last seen, message), e.g. `{{ .Reason }}: "
                 "{{ .Message }}`. Texts over the bot's size limit are cut and end with "
                 "\"…(truncated)\".")
SECRET_DOC = ("Signing secret of a robot with signature security (\"SEC...\"); requests are "
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

    def waits_for_batch(self) -> bool:
        """False: bots take one message per request, so a fuller batch saves nothing."""
        return False

    def sends_each_event(self) -> bool:
        """True: one bot message per request."""
        return True

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
