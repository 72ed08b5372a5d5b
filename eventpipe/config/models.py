"""The whole configuration file: resmo's top-level keys plus eventpipe's own sections.

resmo keys keep resmo's names and meaning, with two deliberate differences (docs/migrating.md):
`maxEventAgeSeconds` defaults to 0 (off) and an old event is still spooled, only not routed;
the deprecated `throttlePeriod` is accepted and ignored. eventpipe adds `spool`, `watch`,
`http`, `metrics`, `shutdownTimeout` and per-receiver `retry`/`batch`.

Each section's model belongs to the component that reads it (`eventpipe.spool.config`,
`eventpipe.watch.config`, `eventpipe.leader.config`, `eventpipe.server.config`,
`eventpipe.metrics.config`, `eventpipe.routing.config`); this module assembles them. The
enrichment keys (`omitLookup`, `cacheSize`, `kubeQPS`, `kubeBurst`) are resmo's top-level keys,
so they stay here and the app hands them, with the `enrich:` section
(`eventpipe.enrich.config`), to `eventpipe.enrich.build_enricher`.

A file is validated by `validate_config`, through the `Config` subclass whose receivers have
fields for the sink keys the file uses (`config_model`), so only those receivers' config models
are imported. `Config` itself holds receivers validated already (models, not mappings).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from types import GenericAlias
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    InstanceOf,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from eventpipe.config.receivers import ReceiverBase, receiver_model, sink_keys_in
from eventpipe.config.sinks import SINK_MODELS
from eventpipe.core.model import Model
from eventpipe.core.units import Duration
from eventpipe.enrich.config import EnrichConfig
from eventpipe.leader.config import LeaderElectionConfig
from eventpipe.metrics.config import MetricsConfig
from eventpipe.routing.config import RouteConfig
from eventpipe.server.config import HttpConfig, MetricsReceiverConfig
from eventpipe.spool.config import SpoolConfig
from eventpipe.watch.config import WatchConfig

_RECEIVERS = "Named destinations the routes send to."

# resmo (zerolog) accepts more levels than eventpipe logs at; map them to the nearest.
_LOG_LEVEL_ALIASES = {"trace": "debug", "warning": "warn", "fatal": "error", "panic": "error"}


class Config(Model):
    """The eventpipe configuration file (a superset of kubernetes-event-exporter's)."""

    log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="info", alias="logLevel",
        description="Log level; resmo's trace/fatal/panic map to debug/error.",
    )
    dependency_log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="warn", alias="dependencyLogLevel",
        description="Log level of the libraries eventpipe uses (aiohttp, kubernetes_asyncio, "
        "...); `logLevel` sets eventpipe's own. aiosqlite and kubernetes_asyncio's REST client "
        "stay at warn whatever is asked: at debug they log event bodies.",
    )
    log_format: Literal["json", "pretty"] = Field(
        default="json", alias="logFormat", description="Log format: 'json' or 'pretty'."
    )
    cluster_name: str = Field(
        default="", alias="clusterName",
        description="Cluster name, added to metrics (`cluster` label) and available to layouts.",
    )
    namespace: str = Field(default="", description="Watch only this namespace; empty = all.")
    leader_election: LeaderElectionConfig = Field(
        default_factory=LeaderElectionConfig, alias="leaderElection",
        description="Leader election between replicas.",
    )
    route: RouteConfig = Field(
        default_factory=RouteConfig, description="Root of the route tree (resmo semantics)."
    )
    receivers: list[InstanceOf[ReceiverBase]] = Field(
        default_factory=list, description=_RECEIVERS)
    max_event_age_seconds: int = Field(
        default=0, ge=0, alias="maxEventAgeSeconds",
        description="Do not route events last seen longer ago than this (they are still spooled "
        "and counted); 0 = off. resmo's default was 5.",
    )
    kube_qps: float = Field(
        default=0.0, ge=0, alias="kubeQPS", description="Client QPS limit; 0 = client default."
    )
    kube_burst: int = Field(
        default=0, ge=0, alias="kubeBurst", description="Client burst limit; 0 = client default."
    )
    metrics_name_prefix: str = Field(
        default="event_exporter_", alias="metricsNamePrefix",
        pattern=r"^([a-zA-Z_:][a-zA-Z0-9_:]*)?$",
        description="Prefix of the event counter metric (`<prefix>events_total`).",
    )
    omit_lookup: bool = Field(
        default=False, alias="omitLookup",
        description="Do not fetch the involved object's labels/annotations/owners.",
    )
    cache_size: int = Field(
        default=1024, ge=0, alias="cacheSize",
        description="Entries in the involved-object lookup cache; 0 = default (1024).",
    )
    throttle_period: int | None = Field(
        default=None, alias="throttlePeriod",
        description="resmo's deprecated alias of maxEventAgeSeconds; accepted and ignored.",
    )
    kubeconfig: str | None = Field(
        default=None, description="Path of a kubeconfig; unset = in-cluster or $KUBECONFIG."
    )
    enrich: EnrichConfig = Field(default_factory=EnrichConfig,
                                 description="eventpipe: enrichment's list+watch metadata caches.")
    spool: SpoolConfig = Field(default_factory=SpoolConfig, description="eventpipe: the spool.")
    watch: WatchConfig = Field(default_factory=WatchConfig, description="eventpipe: the watch.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="eventpipe: HTTP server.")
    metrics_receiver: MetricsReceiverConfig | None = Field(
        default=None, alias="metricsReceiver",
        description="The port of /metrics as the Prometheus alerting guide's config names it; "
        "sets `http.port`.",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig,
                                   description="eventpipe: event-counter cardinality limits.")
    shutdown_timeout: Duration = Field(
        default=25.0, alias="shutdownTimeout",
        description="On SIGTERM, how long in-flight batches get to finish.",
    )

    @field_validator("log_level", "dependency_log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            return _LOG_LEVEL_ALIASES.get(value, value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _metrics_receiver_port(cls, data: Any) -> Any:
        """`metricsReceiver.port` is `http.port`; giving both, different, is an error."""
        section = data.get("metricsReceiver") if isinstance(data, dict) else None
        if not isinstance(section, dict) or "port" not in section:
            return data
        http = data.get("http") or {}
        if not isinstance(http, dict):
            return data  # the http model reports it
        if "port" in http and http["port"] != section["port"]:
            raise PydanticCustomError(
                "port_conflict",
                "metricsReceiver.port {port} and http.port {http} differ: give one of them",
                {"port": section["port"], "http": http["port"],
                 "at": ("metricsReceiver", "port")})
        return {**data, "http": {**http, "port": section["port"]}}

    @field_validator("cache_size")
    @classmethod
    def _cache_size(cls, value: int) -> int:
        return value or 1024

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        seen: dict[str, int] = {}
        for index, receiver in enumerate(self.receivers):
            if receiver.name in seen:
                raise PydanticCustomError(
                    "duplicate_receiver",
                    "duplicate receiver name '{name}' (also receivers[{first}])",
                    {"name": receiver.name, "first": seen[receiver.name],
                     "at": ("receivers", index, "name")},
                )
            seen[receiver.name] = index
        counters = [i for i, r in enumerate(self.receivers) if r.sink_type == "metrics"]
        if len(counters) > 1:
            raise PydanticCustomError(
                "metrics_receivers",
                "a second metrics receiver (also receivers[{first}]): there is one event "
                "counter, so give its route every rule that should count",
                {"first": counters[0], "at": ("receivers", counters[1], "metrics")})
        for loc, rule, is_match in self.route.iter_rules():
            # A receiver on a drop rule is ignored (as in resmo), so it is not checked either.
            if is_match and rule.receiver and rule.receiver not in seen:
                raise PydanticCustomError(
                    "unknown_receiver",
                    "receiver '{name}' is not defined in receivers (defined: {known})",
                    {"name": rule.receiver, "known": ", ".join(seen) or "none",
                     "at": (*loc, "receiver")},
                )
        return self

    @property
    def watch_namespaces(self) -> tuple[str, ...]:
        """Namespaces to watch: `watch.namespaces` plus `namespace`; empty = all namespaces."""
        merged = dict.fromkeys(self.watch.namespaces)
        if self.namespace:
            merged[self.namespace] = None
        return tuple(merged)


def validate_config(data: dict[str, Any]) -> Config:
    """Validate a parsed config file (raises pydantic's ValidationError), importing the config
    models of the receiver types it uses and no others."""
    return config_model(sink_keys_in(data.get("receivers"))).model_validate(data)


def config_model(keys: Iterable[str]) -> type[Config]:
    """`Config` whose receivers are validated with fields for the sink keys `keys`."""
    wanted = set(keys)
    return _config_model(tuple(key for key in SINK_MODELS if key in wanted))


def _keep_validated(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # A receiver validated already (the demo merges a loaded file's) is taken as it is.
    return value if isinstance(value, ReceiverBase) else handler(value)


@functools.cache
def _config_model(keys: tuple[str, ...]) -> type[Config]:
    receiver: Any = Annotated[receiver_model(keys), WrapValidator(_keep_validated)]
    field: Any = (GenericAlias(list, (receiver,)),
                  Field(default_factory=list, description=_RECEIVERS))
    model: type[Config] = create_model(
        "Config", __base__=Config, __doc__=Config.__doc__, __module__=__name__, receivers=field)
    return model
