"""eventpipe's configuration: one YAML file, a superset of kubernetes-event-exporter's.

Public surface (everything else in this package is private)::

    load_config(path) -> Config            read, expand ${ENV}, parse, validate
    load_config_text(text, source=...)     the same from a string
    config_json_schema() -> dict           JSON Schema of the file
    parse_duration(value) -> float         "50ms", "5m", "1h30m", 30 -> seconds
    ConfigError                            message says file:line: key.path: what is wrong

Models: `Config`, `Receiver` (`.sink_type`, `.sink`), `RouteConfig`, `RuleConfig`, and the
sections they hold; each section's model is defined by the component that reads it (e.g.
`eventpipe.spool.config.SpoolConfig`) and named here as the config file's surface. Sinks are
registered in `eventpipe.config.sinks.SINK_MODELS`; `Receiver` (every sink key),
`FileSinkConfig` and `StdoutSinkConfig` are imported when first named, so loading a config
imports only the receiver models it uses.
"""

from typing import TYPE_CHECKING

from eventpipe.config.loader import load_config, load_config_text
from eventpipe.config.models import Config
from eventpipe.config.receivers import BatchConfig, RetryConfig
from eventpipe.config.schema import config_json_schema
from eventpipe.config.sinks import SINK_MODELS, SinkConfig
from eventpipe.core.errors import ConfigError
from eventpipe.core.units import parse_duration, parse_size
from eventpipe.leader.config import LeaderElectionConfig
from eventpipe.routing.config import RouteConfig, RuleConfig
from eventpipe.server.config import HttpConfig
from eventpipe.spool.config import SpoolConfig
from eventpipe.watch.config import WatchConfig

if TYPE_CHECKING:
    from eventpipe.config.receivers import Receiver
    from eventpipe.config.sinks import FileSinkConfig, StdoutSinkConfig

__all__ = [
    "SINK_MODELS",
    "BatchConfig",
    "Config",
    "ConfigError",
    "FileSinkConfig",
    "HttpConfig",
    "LeaderElectionConfig",
    "Receiver",
    "RetryConfig",
    "RouteConfig",
    "RuleConfig",
    "SinkConfig",
    "SpoolConfig",
    "StdoutSinkConfig",
    "WatchConfig",
    "config_json_schema",
    "load_config",
    "load_config_text",
    "parse_duration",
    "parse_size",
]


_LAZY = {"Receiver": "eventpipe.config.receivers", "FileSinkConfig": "eventpipe.config.sinks",
         "StdoutSinkConfig": "eventpipe.config.sinks"}


def __getattr__(name: str) -> object:
    """The models imported when first named (PEP 562): see the module docstring."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
