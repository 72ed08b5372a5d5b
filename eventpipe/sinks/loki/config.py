"""Config of the `loki:` receiver: resmo's keys plus what a batched, labelled push needs.

resmo (pkg/sinks/loki.go) takes `url` (the full push URL), `streamLabels` (fixed labels of its
one stream), `headers`, `tls` and `layout`, and pushes one event per request stamped with "now".
Those keys mean the same here; eventpipe adds `tenantID`, basic/bearer auth, templated `labels`
(one stream per label set), `maxRequestBytes`, `compress`, `restampBehind`,
`structuredMetadata` and `timeout`.

Checked here so the error names the YAML line:
- label names are sanitised to Loki's rules (`[a-zA-Z_][a-zA-Z0-9_]*`; other characters become
  `_`, a leading digit gets a `_` prefix); two names that sanitise to the same one, a name
  starting with `__` (reserved) or more than `MAX_LABELS` labels are errors;
- `labels` values compile as Go templates;
- header values are fixed strings: one request carries many events, so a templated header has
  no single value (resmo rendered headers per event; use `${ENV}` or `labels` instead);
- one kind of authorization and one tenant source only.
The `cluster` label added when `clusterName` is set is counted by the sink at startup.
Secrets (`password`, `bearerToken`, `url`, header values) are left out of reprs and errors.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from yarl import URL

from eventpipe.core.units import ByteSize, Duration
from eventpipe.sinks.config import SinkConfig, check_header, check_one_authorization
from eventpipe.sinks.tls import TlsConfig
from eventpipe.sinks.urls import check_url

MAX_LABELS = 15
"""Loki's default `max_label_names_per_series`."""

DEFAULT_LABELS: dict[str, str] = {
    "namespace": "{{ .Namespace }}",
    "type": "{{ .Type }}",
    "reason": "{{ .Reason }}",
    "kind": "{{ .InvolvedObject.Kind }}",
}
"""Templated labels used when `labels` is not set: bounded cardinality, never object names."""

PUSH_PATH = "/loki/api/v1/push"
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """Loki's label-name rules: invalid characters become `_`, a leading digit gets `_`."""
    clean = _INVALID.sub("_", name)
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return clean


def push_url(url: str) -> str:
    """resmo's `url` is the full push URL; a bare `http://host:3100` gets the push path."""
    parsed = URL(url)
    if parsed.path in ("", "/"):
        return str(parsed.with_path(PUSH_PATH))
    return url


class LokiSinkConfig(SinkConfig):
    """Push events to Grafana Loki: batched, gzip JSON, one stream per label set."""

    url: str = Field(
        min_length=1, repr=False,
        description="Loki push URL (`http://loki:3100/loki/api/v1/push`, as resmo). A URL "
        "with no path gets `/loki/api/v1/push`. Never logged.")
    stream_labels: dict[str, str] = Field(
        default_factory=dict, alias="streamLabels",
        description="Fixed labels on every stream (resmo). Names are sanitised to Loki's "
        "rules; empty values are left out.")
    labels: dict[str, str] | None = Field(
        default=None,
        description="eventpipe: labels rendered per event, name -> Go template; events with "
        "different label sets go to different streams. Default: namespace, type, reason and "
        "kind of the involved object (plus `cluster` when clusterName is set); object names "
        "are never labels by default (cardinality). `{}`: only streamLabels.")
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False,
        description="Fixed request headers (resmo); not templates, as a request carries many "
        "events. Values are never logged.")
    tls: TlsConfig | None = Field(default=None, description="TLS settings for https URLs.")
    layout: Any = Field(
        default=None,
        description="Line template (resmo): a map whose string leaves are Go templates, sent "
        "as a JSON line, or a template string. Omitted: the Event JSON with its Kubernetes "
        "field names (plus clusterName), so `| json` queries work.")
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent",
        description="Accepted for resmo compatibility and ignored: every version is sent.")
    tenant_id: str = Field(
        default="", alias="tenantID",
        description="eventpipe: Loki tenant, sent as the `X-Scope-OrgID` header.")
    username: str = Field(default="", description="eventpipe: basic auth user name.")
    password: str = Field(default="", repr=False,
                          description="eventpipe: basic auth password; never logged.")
    bearer_token: str = Field(
        default="", alias="bearerToken", repr=False,
        description="eventpipe: send `Authorization: Bearer <token>`; never logged.")
    bearer_token_file: str = Field(
        default="", alias="bearerTokenFile",
        description="eventpipe: file holding the bearer token, re-read every minute "
        "(rotated service-account tokens).")
    max_request_bytes: ByteSize = Field(
        default=1 << 20, ge=4096, alias="maxRequestBytes",
        description="eventpipe: largest uncompressed request body; a bigger batch is split "
        "into several requests. An event that cannot fit alone is a dead letter.")
    compress: bool = Field(default=True, description="eventpipe: gzip request bodies.")
    restamp_behind: Duration = Field(
        default=3600.0, ge=0, alias="restampBehind",
        description="eventpipe: Loki's window (its max_chunk_age / 2, 1h by default). An entry "
        "further behind the newest one this receiver sent to its stream is stamped with the "
        "time eventpipe stored the event (the line keeps the event's own times), and an entry "
        "Loki still refuses as 'entry too far behind' is re-sent stamped now, counted in "
        "eventpipe_sink_restamped_total. `0`: entries always keep the event's time, and "
        "Loki's refusal is a dead letter.")
    structured_metadata: Literal["auto", "on", "off"] = Field(
        default="auto", alias="structuredMetadata",
        description="eventpipe: structured metadata on re-stamped entries (Loki 2.9+, on by "
        "default since 3.0): `event_time` (the event's time as RFC 3339 with nanoseconds) and "
        "`restamp_reason` (`window` or `refused`). `auto`: sent until the server answers that "
        "structured metadata is disallowed (or cannot parse it); then, with one log line, "
        "never again for this receiver, and the refused request is re-sent without it. `on`: "
        "always sent; a server that refuses it dead-letters those entries. `off`: never sent.")
    timeout: Duration = Field(default=10.0, gt=0,
                              description="eventpipe: total time allowed for one request.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value, "url")

    @field_validator("structured_metadata", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on` / `off` as a boolean.
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            check_header(name, text, templated=True)
            if "{{" in text:
                raise ValueError(f"headers.{name}: templated headers are not supported: one "
                                 "push carries many events (use `${{ENV}}` or `labels`)")
            check_header(name, text)
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        from eventpipe.layout import compile_template

        for name, text in (value or {}).items():
            compile_template(text, where=f"labels.{name}")  # LayoutError is a ValueError
        return value

    @model_validator(mode="after")
    def _checks(self) -> LokiSinkConfig:
        self.label_names(cluster=False)
        if self.password and not self.username:
            raise ValueError("password: set `username` too (basic auth)")
        lower = {name.lower() for name in self.headers}
        check_one_authorization({
            "username/password": bool(self.username), "bearerToken": bool(self.bearer_token),
            "bearerTokenFile": bool(self.bearer_token_file),
            "headers.Authorization": "authorization" in lower})
        if self.tenant_id and "x-scope-orgid" in lower:
            raise ValueError("tenant given twice: tenantID and headers.X-Scope-OrgID; keep one")
        return self

    def templated_labels(self, *, cluster: bool) -> dict[str, str]:
        """Name (as configured) -> template of the per-event labels; defaults if `labels` unset."""
        if self.labels is not None:
            return dict(self.labels)
        static = {sanitize_label_name(k) for k in self.stream_labels}
        # A resmo user's `streamLabels: {namespace: prod}` beats the default template.
        out = {k: v for k, v in DEFAULT_LABELS.items() if k not in static}
        if cluster and "cluster" not in static:
            out["cluster"] = "{{ .ClusterName }}"
        return out

    def label_names(self, *, cluster: bool) -> list[str]:
        """All sanitised label names; raises ValueError on a clash, `__` or > MAX_LABELS."""
        seen: dict[str, str] = {}
        for where, raw in ([("streamLabels", k) for k in self.stream_labels]
                           + [("labels", k) for k in self.templated_labels(cluster=cluster)]):
            name = sanitize_label_name(raw)
            if name.startswith("__"):
                raise ValueError(f"{where}.{raw}: label names starting with '__' are reserved")
            if name in seen:
                raise ValueError(f"{where}.{raw}: label {name!r} is also set by {seen[name]}")
            seen[name] = f"{where}.{raw}"
        if len(seen) > MAX_LABELS:
            raise ValueError(f"{len(seen)} stream labels ({', '.join(seen)}); Loki takes at "
                             f"most {MAX_LABELS} per stream")
        return list(seen)
