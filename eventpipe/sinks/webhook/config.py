"""Config of the generic `webhook:` receiver: resmo's keys plus how eventpipe sends.

resmo (pkg/sinks/webhook.go) takes `endpoint`, `headers`, `tls` and `layout` and POSTs one
event per request with `Content-Type: application/json`; header values are Go templates rendered
against each event. Those keys mean the same here. eventpipe adds `method`, `batch` (one JSON
array per batch instead of one request per event), `timeout`, `contentType` and optional basic
or bearer auth.

Checked here, at load time, so the error names the YAML line:
- every header value that holds `{{` compiles as a template (resmo sent a value that did not
  parse as it was; here a broken template is a startup error, like a broken layout);
- templated headers and `batch: true` do not mix: one request carries many events, so a header
  that depends on the event has no single value (use `${ENV}` for values that do not);
- the endpoint is an http(s) URL; header names and fixed values hold no CR/LF;
- one kind of authorization only (basic, bearer or an `Authorization` header).
Secrets (`password`, `bearerToken`, header values) are left out of reprs and error messages.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from eventpipe.core.units import Duration
from eventpipe.sinks.config import SinkConfig, check_header, check_one_authorization
from eventpipe.sinks.tls import TlsConfig
from eventpipe.sinks.urls import check_url

_TEMPLATE_MARK = "{{"


def is_templated(value: str) -> bool:
    """True when a header value is a Go template (rendered per event), not a fixed string."""
    return _TEMPLATE_MARK in value


class WebhookSinkConfig(SinkConfig):
    """Send events to any HTTP endpoint: one request per event, or a JSON array per batch."""

    endpoint: str = Field(
        min_length=1, repr=False,
        description="URL to send to (http:// or https://). Never logged: it may hold a token.")
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False,
        description="Request headers. Values holding `{{` are Go templates rendered per event "
        "(as resmo); not allowed with `batch: true`. A rendered value with CR/LF is a dead "
        "letter for that event.")
    tls: TlsConfig | None = Field(default=None, description="TLS settings for https endpoints.")
    layout: Any = Field(
        default=None,
        description="Body template: a map (resmo) or list whose string leaves are Go templates, "
        "sent as JSON. Omitted: the event as JSON (plus `clusterName` when set).")
    method: str = Field(
        default="POST", description="eventpipe: HTTP method: POST, PUT or PATCH.")
    batch: bool = Field(
        default=False,
        description="eventpipe: send each batch (the receiver's `batch.maxEvents`) as one JSON "
        "array of bodies. false (resmo): one request per event, sent in order.")
    timeout: Duration = Field(
        default=10.0, gt=0, description="eventpipe: total time allowed for one request.")
    content_type: str = Field(
        default="application/json", min_length=1, alias="contentType",
        description="eventpipe: the Content-Type header of each request.")
    username: str = Field(
        default="", description="eventpipe: basic auth user name (with `password`).")
    password: str = Field(
        default="", repr=False, description="eventpipe: basic auth password; never logged.")
    bearer_token: str = Field(
        default="", alias="bearerToken", repr=False,
        description="eventpipe: send `Authorization: Bearer <token>`; never logged.")

    def waits_for_batch(self) -> bool:
        """Only with `batch: true`: one request per event gains nothing from waiting."""
        return self.batch

    def sends_each_event(self) -> bool:
        """Without `batch: true`: one request per event."""
        return not self.batch

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_url(value, "endpoint")

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in ("POST", "PUT", "PATCH"):
            raise ValueError(f"method: expected POST, PUT or PATCH, got {value!r}")
        return method

    @field_validator("layout")
    @classmethod
    def _layout(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict | list):
            raise ValueError("layout: a webhook layout is a map (or list) of templates, sent "
                             "as JSON")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        from eventpipe.layout import compile_template

        for name, text in value.items():
            check_header(name, text, templated=is_templated(text))
            if is_templated(text):
                # LayoutError is a ValueError naming the header, line and column.
                compile_template(text, where=f"headers.{name}")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> WebhookSinkConfig:
        if self.batch:
            templated = [name for name, text in self.headers.items() if is_templated(text)]
            if templated:
                raise ValueError(
                    f"headers {', '.join(templated)}: templated headers need one request per "
                    "event; remove `batch: true` or use fixed values (`${ENV}` works)")
        if self.password and not self.username:
            raise ValueError("password: set `username` too (basic auth)")
        check_one_authorization({
            "username/password": bool(self.username), "bearerToken": bool(self.bearer_token),
            "headers.Authorization": any(n.lower() == "authorization" for n in self.headers)})
        return self
