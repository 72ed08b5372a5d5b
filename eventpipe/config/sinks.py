"""The receiver types the config file accepts, as the registry declares them.

A receiver in the YAML is ``name`` plus exactly one sink key (``file:``, ``stdout:``, ...).
Each key's model lives with its sink (`eventpipe.sinks.<name>.config`) and is named in
`eventpipe.sinks.registry`; `SINK_MODELS` is that registry seen from the config file. Keys resmo
has that eventpipe does not implement yet are listed in `RESMO_SINK_TYPES` so their users get
"not supported yet" rather than "unknown key".
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from eventpipe.sinks.config import SinkConfig
from eventpipe.sinks.file.config import FileSinkConfig
from eventpipe.sinks.registry import RECEIVERS
from eventpipe.sinks.stdout.config import StdoutSinkConfig

__all__ = ["RESMO_SINK_TYPES", "SINK_MODELS", "FileSinkConfig", "SinkConfig",
           "StdoutSinkConfig"]

SINK_MODELS: Final[Mapping[str, type[SinkConfig]]] = MappingProxyType(
    {receiver.key: receiver.config for receiver in RECEIVERS})
"""Sink key in the YAML -> its config model, in registry order."""

RESMO_SINK_TYPES: Final[frozenset[str]] = frozenset(
    {
        "bigquery", "elasticsearch", "eventbridge", "file", "firehose", "inMemory", "kafka",
        "kinesis", "loki", "opensearch", "opscenter", "opsgenie", "pipe", "prometheus",
        "pubsub", "slack", "sns", "sqs", "stdout", "syslog", "teams", "webhook",
    }
)
"""Every sink key resmoio/kubernetes-event-exporter accepts (pkg/sinks/receiver.go)."""
