"""Config of the `elasticsearch:` and `opensearch:` receivers (one implementation, one model).

Keys are resmoio/kubernetes-event-exporter's (pkg/sinks/elasticsearch.go, opensearch.go):
`hosts`, `username`, `password`, `cloudID`, `apiKey`, `headers`, `useEventID`, `deDot`,
`index`, `indexFormat`, `type`, `tls`, `layout`, `sentUpdateEvent`. OpenSearch's resmo model
has a subset of them; both keys accept all of them because both speak the same bulk API.
eventpipe adds `maxBulkBytes` and `timeout`.

Checked here so a mistake is a startup error with the key's name, not a stream of failed sends:
a host that is not an http(s) URL, neither `index` nor `indexFormat`, no `hosts` and no
`cloudID`, a `cloudID` that does not decode.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import Field, field_validator, model_validator

from eventpipe.config.sinks import SinkConfig
from eventpipe.config.tls import TlsConfig
from eventpipe.core.units import ByteSize, Duration

_TEN_MIB = 10 * 1024 * 1024


class ElasticsearchSinkConfig(SinkConfig):
    """Index every event into Elasticsearch or OpenSearch with the `_bulk` API."""

    hosts: list[str] = Field(
        default_factory=list,
        description="Base URLs of the cluster's nodes (`https://es-1:9200`); a batch goes to "
        "the next one round-robin and fails over to the others on connection errors and "
        "502/503/504. Credentials in a URL (`https://user:pass@host`) are used as basic auth "
        "and never logged.")
    username: str = Field(default="", description="Basic-auth user name.")
    password: str = Field(default="", description="Basic-auth password (use `${ENV}`).")
    cloud_id: str = Field(
        default="", alias="cloudID",
        description="Elastic Cloud deployment ID (`name:base64`); gives the host when `hosts` "
        "is empty.")
    api_key: str = Field(
        default="", alias="apiKey",
        description="Sent as `Authorization: ApiKey <apiKey>` (the base64 `id:key` Elastic "
        "prints); takes precedence over username/password.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers sent with every bulk request.")
    use_event_id: bool = Field(
        default=False, alias="useEventID",
        description="`_id` = the Event's uid, as resmo: every new version of an Event "
        "overwrites its document (only the latest count is kept, within one index). "
        "Default: `_id` = uid-resourceVersion, one document per version; either way a retried "
        "batch overwrites instead of duplicating.")
    de_dot: bool = Field(
        default=False, alias="deDot",
        description="Replace dots in label and annotation keys with underscores (the event's "
        "and the involvedObject's), as resmo's deDot; avoids object/keyword mapping clashes.")
    index: str = Field(default="", description="Index name, used when `indexFormat` is empty.")
    index_format: str = Field(
        default="", alias="indexFormat",
        description="Index name pattern: `{2006-01-02}` is a Go time layout applied to the "
        "event's last-seen time in UTC (resmo uses the send time); `{{ .Namespace }}` and "
        "other Go-template actions are rendered per event. Example: "
        "`kube-events-{2006-01-02}`.")
    type: str = Field(
        default="", description="Document `_type` for clusters of version 6 and older only.")
    tls: TlsConfig | None = Field(default=None, description="TLS settings for https hosts.")
    layout: Any = Field(
        default=None,
        description="Document template: a map whose string leaves are Go templates, rendered "
        "per event. Omitted: the whole event as JSON.")
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent",
        description="Accepted for resmo compatibility and ignored: eventpipe indexes every "
        "version of an Event.")
    max_bulk_bytes: ByteSize = Field(
        default=_TEN_MIB, ge=1024, alias="maxBulkBytes",
        description="eventpipe: largest `_bulk` request body; a batch over it is split into "
        "several requests. A 413 answer splits further.")
    timeout: Duration = Field(
        default=30.0, gt=0, description="eventpipe: time limit of one bulk request.")

    @field_validator("hosts")
    @classmethod
    def _urls(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not host.startswith(("http://", "https://")):
                # Never echo the value: it may carry credentials.
                raise ValueError("each host must be an http:// or https:// URL")
        return hosts

    @model_validator(mode="after")
    def _complete(self) -> ElasticsearchSinkConfig:
        if not self.index and not self.index_format:
            raise ValueError("set `index` or `indexFormat`")
        if not self.hosts and not self.cloud_id:
            raise ValueError("set `hosts` (or `cloudID`)")
        if self.cloud_id:
            cloud_host(self.cloud_id)
        return self

    def urls(self) -> list[str]:
        """The node URLs to use: `hosts`, else the one `cloudID` names."""
        return list(self.hosts) or [cloud_host(self.cloud_id)]


def cloud_host(cloud_id: str) -> str:
    """The Elasticsearch URL of an Elastic Cloud ID (`name:base64(host$es-id$kibana-id)`)."""
    encoded = cloud_id.rsplit(":", 1)[-1] if ":" in cloud_id else cloud_id
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("cloudID: not a valid Elastic Cloud ID") from exc
    parts = decoded.split("$")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("cloudID: not a valid Elastic Cloud ID")
    host, port = parts[0], "443"
    if ":" in host:
        host, port = host.rsplit(":", 1)
    return f"https://{parts[1]}.{host}:{port}"


class OpenSearchSinkConfig(ElasticsearchSinkConfig):
    """Index every event into OpenSearch with the `_bulk` API (same keys as `elasticsearch`)."""
