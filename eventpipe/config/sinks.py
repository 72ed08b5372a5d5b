"""Config models of the sinks eventpipe implements, and the registry that names them.

A receiver in the YAML is ``name`` plus exactly one sink key (``file:``, ``stdout:``, ...). The
key is looked up in `SINK_MODELS`; adding a sink is one model here (or in its own module) plus
one line in `SINK_MODELS`. Keys resmo has that eventpipe does not implement yet are listed in
`RESMO_SINK_TYPES` so their users get "not supported yet" rather than "unknown key".

Layouts stay raw Python objects (a string, or nested maps/lists of Go-template strings);
`eventpipe.layout` compiles them when the app starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from pydantic import Field

from eventpipe.core.model import Model

_LAYOUT_DOC = (
    "Payload template: a Go-template string, or a map/list whose string leaves are Go "
    "templates (`{{ .InvolvedObject.Name }}`, `{{ toJson . }}`), rendered per event. "
    "Omitted: the whole event as JSON."
)
_DEDOT_DOC = (
    "Replace dots in label and annotation keys with underscores (on the event and its "
    "involvedObject) before rendering, as resmo's deDot."
)
_SENT_UPDATE_DOC = (
    "Accepted for resmo compatibility and ignored: eventpipe delivers every version of an "
    "Event (a count going 1 -> 500 is 500 versions' worth of updates), and routing decides "
    "which ones a receiver takes."
)


class SinkConfig(Model):
    """Base of every sink's config model."""


class FileSinkConfig(SinkConfig):
    """Append one JSON document per event to a file, with size-based rotation."""

    path: str = Field(min_length=1, description="File to append events to (created if missing).")
    layout: Any = Field(default=None, description=_LAYOUT_DOC)
    max_size: int = Field(
        default=0, ge=0, alias="maxsize",
        description="Rotate when the file reaches this many megabytes; 0 = never rotate.",
    )
    max_age: int = Field(
        default=0, ge=0, alias="maxage",
        description="Delete rotated files older than this many days; 0 = keep regardless of age.",
    )
    max_backups: int = Field(
        default=0, ge=0, alias="maxbackups",
        description="Keep at most this many rotated files; 0 = keep all (subject to maxage).",
    )
    de_dot: bool = Field(default=False, alias="deDot", description=_DEDOT_DOC)
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent", description=_SENT_UPDATE_DOC
    )


class StdoutSinkConfig(SinkConfig):
    """Write one JSON document per event to standard output."""

    layout: Any = Field(default=None, description=_LAYOUT_DOC)
    de_dot: bool = Field(default=False, alias="deDot", description=_DEDOT_DOC)
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent", description=_SENT_UPDATE_DOC
    )


# Sink models in their own modules subclass SinkConfig, so they are imported once it exists.
from eventpipe.config.sink_elasticsearch import (  # noqa: E402
    ElasticsearchSinkConfig,
    OpenSearchSinkConfig,
)
from eventpipe.config.sink_im import (  # noqa: E402
    BarkSinkConfig,
    DingtalkSinkConfig,
    FeishuSinkConfig,
    SlackSinkConfig,
    WecomSinkConfig,
)
from eventpipe.config.sink_kafka import KafkaSinkConfig  # noqa: E402
from eventpipe.config.sink_loki import LokiSinkConfig  # noqa: E402
from eventpipe.config.sink_webhook import WebhookSinkConfig  # noqa: E402

SINK_MODELS: Final[Mapping[str, type[SinkConfig]]] = MappingProxyType(
    {
        "file": FileSinkConfig,
        "stdout": StdoutSinkConfig,
        "elasticsearch": ElasticsearchSinkConfig,
        "opensearch": OpenSearchSinkConfig,
        "webhook": WebhookSinkConfig,
        "loki": LokiSinkConfig,
        "kafka": KafkaSinkConfig,
        "wecom": WecomSinkConfig,
        "dingtalk": DingtalkSinkConfig,
        "feishu": FeishuSinkConfig,
        "slack": SlackSinkConfig,
        "bark": BarkSinkConfig,
    }
)
"""Sink key in the YAML -> its config model. One line per implemented sink."""

RESMO_SINK_TYPES: Final[frozenset[str]] = frozenset(
    {
        "bigquery", "elasticsearch", "eventbridge", "file", "firehose", "inMemory", "kafka",
        "kinesis", "loki", "opensearch", "opscenter", "opsgenie", "pipe", "prometheus",
        "pubsub", "slack", "sns", "sqs", "stdout", "syslog", "teams", "webhook",
    }
)
"""Every sink key resmoio/kubernetes-event-exporter accepts (pkg/sinks/receiver.go)."""
