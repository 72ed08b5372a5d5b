"""Pin the public surface of eventpipe.config and eventpipe.routing."""

from __future__ import annotations

import eventpipe.config
import eventpipe.routing
from eventpipe.config import SINK_MODELS, Receiver, load_config_text


def test_config_exports() -> None:
    assert sorted(eventpipe.config.__all__) == sorted([
        "SINK_MODELS", "BatchConfig", "Config", "ConfigError", "FileSinkConfig", "HttpConfig",
        "LeaderElectionConfig", "Receiver", "RetryConfig", "RouteConfig", "RuleConfig",
        "SinkConfig", "SpoolConfig", "StdoutSinkConfig", "WatchConfig", "config_json_schema",
        "load_config", "load_config_text", "parse_duration", "parse_size",
    ])
    assert issubclass(eventpipe.config.ConfigError, ValueError)


def test_routing_exports() -> None:
    assert sorted(eventpipe.routing.__all__) == ["Router", "compile_route"]


def test_receiver_fields_follow_the_sink_registry() -> None:
    # Adding a sink is one model plus one SINK_MODELS line: Receiver grows the key by itself.
    assert set(SINK_MODELS) <= set(Receiver.model_fields)
    # The least each sink needs (its required keys); a new sink without an entry needs none.
    minimal = {
        "file": "{path: /tmp/x}",
        "loki": "{url: 'http://127.0.0.1:3100'}",
        "webhook": "{endpoint: 'http://127.0.0.1:8080'}",
        "elasticsearch": "{hosts: ['http://127.0.0.1:9200'], index: events}",
        "opensearch": "{hosts: ['http://127.0.0.1:9200'], index: events}",
        "kafka": "{topic: events, brokers: ['127.0.0.1:9092']}",
        "wecom": "{webhook: 'https://127.0.0.1/send?key=k'}",
        "dingtalk": "{webhook: 'https://127.0.0.1/robot/send?access_token=t'}",
        "feishu": "{webhook: 'https://127.0.0.1/hook/x'}",
        "slack": "{webhookURL: 'https://127.0.0.1/services/x'}",
        "bark": "{deviceKey: k}",
    }
    for key, model in SINK_MODELS.items():
        config = load_config_text(
            f"receivers: [{{name: r, {key}: {minimal.get(key, '{}')}}}]")
        assert config.receivers[0].sink_type == key
        assert type(config.receivers[0].sink) is model
