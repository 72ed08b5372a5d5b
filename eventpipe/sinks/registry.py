"""Every receiver type eventpipe implements: its YAML key, its config model, its sink.

One line per receiver, naming the receiver's package and its config class as strings, so
nothing of a receiver is imported until a config uses it: the loader builds the `Receiver`
model from the config models of the keys a file uses (`config_model`), and `build_sink`
imports the sink module of a configured receiver. A deployment that sends to a file never
loads the Kafka model, let alone aiokafka, and a new receiver costs the others nothing. The
reference docs and the JSON Schema import them all.

Adding a receiver `foo` (see `eventpipe/sinks/README.md`):

1. `eventpipe/sinks/foo/config.py`: `FooSinkConfig(SinkConfig)`, every field described;
2. `eventpipe/sinks/foo/sink.py`: a class implementing `eventpipe.delivery.contract.Sink[P]`
   and `build_sink(config, *, name, cluster_name)` returning it;
3. `eventpipe/sinks/foo/README.md` and `__init__.py` (a docstring, no imports);
4. one line here: `ReceiverType("foo", "eventpipe.sinks.foo", "FooSinkConfig")`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eventpipe.config.receivers import ReceiverBase
    from eventpipe.delivery.contract import Sink
    from eventpipe.sinks.config import SinkConfig


@dataclass(frozen=True, slots=True)
class ReceiverType:
    """One receiver type: the YAML key and where its config model and its sink live."""

    key: str
    """The receiver's key in the YAML (`loki:`)."""
    package: str
    """The receiver's package: `<package>.config` holds the model, `<package>.sink` the sink."""
    config_class: str
    """The name of the key's config model (a `SinkConfig`) in `<package>.config`."""

    @property
    def sink_module(self) -> str:
        """The module whose `build_sink(config, *, name, cluster_name)` makes the sink."""
        return f"{self.package}.sink"

    def load_config_model(self) -> type[SinkConfig]:
        """Import and return the model of the key's value."""
        model: type[SinkConfig] = getattr(importlib.import_module(f"{self.package}.config"),
                                          self.config_class)
        return model


RECEIVERS: tuple[ReceiverType, ...] = (
    ReceiverType("file", "eventpipe.sinks.file", "FileSinkConfig"),
    ReceiverType("stdout", "eventpipe.sinks.stdout", "StdoutSinkConfig"),
    ReceiverType("elasticsearch", "eventpipe.sinks.elasticsearch", "ElasticsearchSinkConfig"),
    ReceiverType("opensearch", "eventpipe.sinks.elasticsearch", "OpenSearchSinkConfig"),
    ReceiverType("webhook", "eventpipe.sinks.webhook", "WebhookSinkConfig"),
    ReceiverType("loki", "eventpipe.sinks.loki", "LokiSinkConfig"),
    ReceiverType("kafka", "eventpipe.sinks.kafka", "KafkaSinkConfig"),
    ReceiverType("wecom", "eventpipe.sinks.wecom", "WecomSinkConfig"),
    ReceiverType("dingtalk", "eventpipe.sinks.dingtalk", "DingtalkSinkConfig"),
    ReceiverType("feishu", "eventpipe.sinks.feishu", "FeishuSinkConfig"),
    ReceiverType("slack", "eventpipe.sinks.slack", "SlackSinkConfig"),
    ReceiverType("bark", "eventpipe.sinks.bark", "BarkSinkConfig"),
    ReceiverType("metrics", "eventpipe.sinks.metrics", "MetricsSinkConfig"),
)
"""The receiver types, in the order the reference docs and the schema list them."""

RECEIVER_KEYS: tuple[str, ...] = tuple(receiver.key for receiver in RECEIVERS)
"""Every receiver key, in registry order (nothing imported)."""

_BY_KEY = {receiver.key: receiver for receiver in RECEIVERS}


def config_model(key: str) -> type[SinkConfig]:
    """The config model of receiver key `key` (imported now); KeyError for an unknown key."""
    return _BY_KEY[key].load_config_model()


class SinkFactory(Protocol):
    """The `build_sink` every sink module defines."""

    def __call__(self, config: Any, *, name: str, cluster_name: str) -> Sink[Any]: ...


def build_sink(receiver: ReceiverBase, *, cluster_name: str) -> Sink[Any]:
    """Create the sink for a receiver; layouts compile here (ValueError names the problem)."""
    found = _BY_KEY.get(receiver.sink_type)
    if found is None:
        raise ValueError(f"receiver {receiver.name!r}: sink type {receiver.sink_type!r} "
                         "has no implementation registered")
    factory: SinkFactory = importlib.import_module(found.sink_module).build_sink
    return factory(receiver.sink, name=receiver.name, cluster_name=cluster_name)
