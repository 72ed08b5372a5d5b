"""The `slack:` receiver: resmo's Slack sink (chat.postMessage with a token), or a webhook.

With `token` (resmo): POST `<apiURL>/chat.postMessage` with `Authorization: Bearer <token>` and
`{"channel": ..., "text": ..., "attachments": [...]}`. As in resmo every key is a Go template
(`channel: "@{{ .InvolvedObject.Labels.owner }}"`), the text has `&`, `<`, `>` escaped
(slack-go's MsgOptionText(text, true)) and `fields` become attachment fields sorted by title.
resmo adds the attachment only when `fields` is set; here any attachment key adds it.
The Web API answers HTTP 200 with `{"ok": false, "error": "..."}`: `ratelimited` is retried
(HTTP 429 + Retry-After too), token errors wait in the spool, others (channel_not_found,
msg_too_long...) dead-letter that message.
With `webhookURL`: the same body (no channel) to an incoming webhook, which answers `ok` or an
HTTP error (400 invalid_payload, 404/410 channel gone, 429), classified by status.
"""

from __future__ import annotations

from typing import Any

from eventpipe.delivery.contract import PermanentSinkError, RetriableSinkError, SinkError
from eventpipe.sinks.http import bearer_auth
from eventpipe.sinks.im.message import compile_field, render
from eventpipe.sinks.im.sink import ImSink
from eventpipe.sinks.slack.config import SlackSinkConfig

LIMIT = 40000
"""Slack cuts text at 40,000 characters; cut it ourselves so the cut says so."""
_TOKEN_ERRORS = frozenset({"not_authed", "invalid_auth", "account_inactive", "token_revoked",
                           "token_expired", "no_permission", "missing_scope"})
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


class SlackSink(ImSink):
    """Posts one Slack message per event."""

    service = "Slack"
    config = SlackSinkConfig

    def __init__(self, *, name: str, cfg: SlackSinkConfig, cluster_name: str = "") -> None:
        self._webhook = bool(cfg.webhook_url)
        url = cfg.webhook_url or cfg.api_url.rstrip("/") + "/chat.postMessage"
        headers = {} if self._webhook else {"Authorization": bearer_auth(cfg.token)}
        super().__init__(name=name, url=url, cfg=cfg, cluster_name=cluster_name,
                         markdown=False, limit=LIMIT, where="message", headers=headers)
        self._channel = compile_field(cfg.channel, name=name, where="channel")
        parts = {"color": cfg.color, "title": cfg.title, "author_name": cfg.author_name,
                 "footer": cfg.footer}
        self._attachment = [(key, compile_field(source, name=name, where=key))
                            for key, source in parts.items() if source]
        self._fields = [(key, compile_field(source, name=name, where=f"fields.{key}"))
                        for key, source in sorted(cfg.fields.items())]

    def message(self, event: dict[str, object]) -> object:
        """`{"channel", "text", "attachments"}` rendered for one event."""
        view = self._text.view(event)
        message: dict[str, object] = {
            "text": self._text.text(event, view).translate(_ESCAPES)}
        if self._channel is not None:
            message["channel"] = render(self._channel, view)
        if self._attachment or self._fields:
            attachment: dict[str, object] = {key: render(template, view)
                                             for key, template in self._attachment}
            if self._fields:
                attachment["fields"] = [
                    {"title": key, "value": render(template, view), "short": False}
                    for key, template in self._fields]
            message["attachments"] = [attachment]
        return message

    def api_error(self, answer: Any) -> SinkError | None:
        """Web API: `ok` true is success. Incoming webhooks: any 2xx is."""
        if self._webhook:
            return None
        if not isinstance(answer, dict):
            return PermanentSinkError("Slack: unexpected answer (not JSON)")
        if answer.get("ok") is True:
            return None
        error = str(answer.get("error", "unknown"))[:200]
        if error == "ratelimited":
            return RetriableSinkError("Slack error ratelimited (rate limited)")
        if error in _TOKEN_ERRORS:
            return RetriableSinkError(f"Slack error {error} (check the receiver's token)")
        return PermanentSinkError(f"Slack error {error}")


def build_sink(config: SlackSinkConfig, *, name: str, cluster_name: str) -> SlackSink:
    """The registry's factory: a `SlackSink` from the `slack:` model."""
    return SlackSink(name=name, cfg=config, cluster_name=cluster_name)
