"""The receiver types the config file accepts, as the registry declares them.

A receiver in the YAML is ``name`` plus exactly one sink key (``file:``, ``stdout:``, ...).
Each key's model lives with its sink (`eventpipe.sinks.<name>.config`) and is named in
`eventpipe.sinks.registry`; `SINK_MODELS` is that registry seen from the config file: its keys
are known without importing anything, and a model is imported when it is looked up, so a
config that uses two receiver types loads two models. Keys resmo has that eventpipe does not
implement yet are listed in `RESMO_SINK_TYPES` so their users get "not supported yet" rather
than "unknown key".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

from eventpipe.sinks.config import SinkConfig
from eventpipe.sinks.registry import RECEIVER_KEYS, config_model

if TYPE_CHECKING:
    from eventpipe.sinks.file.config import FileSinkConfig
    from eventpipe.sinks.stdout.config import StdoutSinkConfig

__all__ = ["RESMO_SINK_TYPES", "SINK_MODELS", "FileSinkConfig", "SinkConfig",
           "StdoutSinkConfig"]


class SinkModels(Mapping[str, type[SinkConfig]]):
    """Sink key in the YAML -> its config model, in registry order; `in`, `len` and iteration
    import nothing, looking a key up imports its model."""

    _keys = frozenset(RECEIVER_KEYS)

    def __getitem__(self, key: str) -> type[SinkConfig]:
        return config_model(key)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(RECEIVER_KEYS)

    def __len__(self) -> int:
        return len(RECEIVER_KEYS)


SINK_MODELS: Final[Mapping[str, type[SinkConfig]]] = SinkModels()
"""Sink key in the YAML -> its config model, in registry order (imported when looked up)."""

RESMO_SINK_TYPES: Final[frozenset[str]] = frozenset(
    {
        "bigquery", "elasticsearch", "eventbridge", "file", "firehose", "inMemory", "kafka",
        "kinesis", "loki", "opensearch", "opscenter", "opsgenie", "pipe", "prometheus",
        "pubsub", "slack", "sns", "sqs", "stdout", "syslog", "teams", "webhook",
    }
)
"""Every sink key resmoio/kubernetes-event-exporter accepts (pkg/sinks/receiver.go)."""

_EXPORTED_MODELS = {"FileSinkConfig": "file", "StdoutSinkConfig": "stdout"}


def __getattr__(name: str) -> type[SinkConfig]:
    """`FileSinkConfig` and `StdoutSinkConfig`, imported when first named (PEP 562)."""
    if name in _EXPORTED_MODELS:
        return config_model(_EXPORTED_MODELS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
