"""Every receiver type eventpipe implements: its YAML key, its config model, its sink.

One line per receiver. The config package builds the `Receiver` model from `RECEIVERS` (one
optional field per key, in this order), and `build_sink` makes the sink of a configured
receiver. A sink module is imported only when a receiver of its type is configured, so a
deployment that sends to Loki never loads aiokafka; the config models are small and always
loaded.

Adding a receiver `foo` (see `eventpipe/sinks/README.md`):

1. `eventpipe/sinks/foo/config.py`: `FooSinkConfig(SinkConfig)`, every field described;
2. `eventpipe/sinks/foo/sink.py`: a class implementing `eventpipe.delivery.contract.Sink[P]`
   and `build_sink(config, *, name, cluster_name)` returning it;
3. `eventpipe/sinks/foo/README.md` and `__init__.py` (a docstring, no imports);
4. one line here: `ReceiverType("foo", FooSinkConfig, "eventpipe.sinks.foo.sink")`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eventpipe.sinks.bark.config import BarkSinkConfig
from eventpipe.sinks.config import SinkConfig
from eventpipe.sinks.dingtalk.config import DingtalkSinkConfig
from eventpipe.sinks.elasticsearch.config import ElasticsearchSinkConfig, OpenSearchSinkConfig
from eventpipe.sinks.feishu.config import FeishuSinkConfig
from eventpipe.sinks.file.config import FileSinkConfig
from eventpipe.sinks.kafka.config import KafkaSinkConfig
from eventpipe.sinks.loki.config import LokiSinkConfig
from eventpipe.sinks.metrics.config import MetricsSinkConfig
from eventpipe.sinks.slack.config import SlackSinkConfig
from eventpipe.sinks.stdout.config import StdoutSinkConfig
from eventpipe.sinks.webhook.config import WebhookSinkConfig
from eventpipe.sinks.wecom.config import WecomSinkConfig

if TYPE_CHECKING:
    from eventpipe.config.receivers import ReceiverBase
    from eventpipe.delivery.contract import Sink


@dataclass(frozen=True, slots=True)
class ReceiverType:
    """One receiver type: the YAML key, its config model, and the module of its sink."""

    key: str
    """The receiver's key in the YAML (`loki:`)."""
    config: type[SinkConfig]
    """The model of the key's value."""
    module: str
    """The module whose `build_sink(config, *, name, cluster_name)` makes the sink."""


RECEIVERS: tuple[ReceiverType, ...] = (
    ReceiverType("file", FileSinkConfig, "eventpipe.sinks.file.sink"),
    ReceiverType("stdout", StdoutSinkConfig, "eventpipe.sinks.stdout.sink"),
    ReceiverType("elasticsearch", ElasticsearchSinkConfig, "eventpipe.sinks.elasticsearch.sink"),
    ReceiverType("opensearch", OpenSearchSinkConfig, "eventpipe.sinks.elasticsearch.sink"),
    ReceiverType("webhook", WebhookSinkConfig, "eventpipe.sinks.webhook.sink"),
    ReceiverType("loki", LokiSinkConfig, "eventpipe.sinks.loki.sink"),
    ReceiverType("kafka", KafkaSinkConfig, "eventpipe.sinks.kafka.sink"),
    ReceiverType("wecom", WecomSinkConfig, "eventpipe.sinks.wecom.sink"),
    ReceiverType("dingtalk", DingtalkSinkConfig, "eventpipe.sinks.dingtalk.sink"),
    ReceiverType("feishu", FeishuSinkConfig, "eventpipe.sinks.feishu.sink"),
    ReceiverType("slack", SlackSinkConfig, "eventpipe.sinks.slack.sink"),
    ReceiverType("bark", BarkSinkConfig, "eventpipe.sinks.bark.sink"),
    ReceiverType("metrics", MetricsSinkConfig, "eventpipe.sinks.metrics.sink"),
)
"""The receiver types, in the order the reference docs and the schema list them."""

_BY_KEY = {receiver.key: receiver for receiver in RECEIVERS}


class SinkFactory(Protocol):
    """The `build_sink` every sink module defines."""

    def __call__(self, config: Any, *, name: str, cluster_name: str) -> Sink[Any]: ...


def build_sink(receiver: ReceiverBase, *, cluster_name: str) -> Sink[Any]:
    """Create the sink for a receiver; layouts compile here (ValueError names the problem)."""
    found = _BY_KEY.get(receiver.sink_type)
    if found is None:
        raise ValueError(f"receiver {receiver.name!r}: sink type {receiver.sink_type!r} "
                         "has no implementation registered")
    factory: SinkFactory = importlib.import_module(found.module).build_sink
    return factory(receiver.sink, name=receiver.name, cluster_name=cluster_name)
