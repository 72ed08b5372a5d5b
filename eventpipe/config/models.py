"""The whole configuration file: resmo's top-level keys plus eventpipe's own sections.

resmo keys keep resmo's names and meaning, with two deliberate differences (docs/migrating.md):
`maxEventAgeSeconds` defaults to 0 (off) and an old event is still spooled, only not routed;
the deprecated `throttlePeriod` is accepted and ignored. eventpipe adds `spool`, `watch`,
`http`, `metrics`, `shutdownTimeout` and per-receiver `retry`/`batch`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from eventpipe.config.base import Model
from eventpipe.config.metrics import MetricsConfig
from eventpipe.config.receivers import Receiver
from eventpipe.config.route import RouteConfig
from eventpipe.config.units import ByteSize, Duration

# resmo (zerolog) accepts more levels than eventpipe logs at; map them to the nearest.
_LOG_LEVEL_ALIASES = {"trace": "debug", "warning": "warn", "fatal": "error", "panic": "error"}


class LeaderElectionConfig(Model):
    """Run several replicas, with only the Lease holder watching and sending."""

    enabled: bool = Field(default=False, description="Enable leader election.")
    leader_election_id: str = Field(
        default="eventpipe", alias="leaderElectionID",
        description="Name of the coordination.k8s.io/v1 Lease the replicas compete for.",
    )
    namespace: str = Field(
        default="", description="Namespace of the Lease; empty = the pod's own ($POD_NAMESPACE, "
        "else the service account's namespace file, else 'default').",
    )
    identity: str = Field(
        default="", description="This replica's name in the Lease; empty = $POD_NAME, else "
        "hostname-pid. Must differ between replicas.",
    )
    lease_duration: Duration = Field(
        default=15.0, alias="leaseDuration",
        description="How long a Lease not renewed stays taken; a standby takes over this long "
        "after it last saw the Lease change (rounded up to whole seconds in the Lease).",
    )
    renew_deadline: Duration = Field(
        default=10.0, alias="renewDeadline",
        description="A leader that has not renewed for this long stops sending and exits (1). "
        "Must be below leaseDuration, so it stops before anyone can take over.",
    )
    retry_period: Duration = Field(
        default=2.0, alias="retryPeriod",
        description="How often the leader renews and a standby tries to acquire.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionConfig:
        if not 0 < self.renew_deadline < self.lease_duration:
            raise ValueError("renewDeadline must be above 0 and below leaseDuration")
        if not 0 < self.retry_period < self.renew_deadline:
            raise ValueError("retryPeriod must be above 0 and below renewDeadline")
        return self


class SpoolConfig(Model):
    """The durable SQLite buffer between the watch and the sinks."""

    path: str = Field(default="/var/lib/eventpipe/spool.db", description="SQLite database file.")
    history_window: Duration = Field(
        default=7 * 86400.0, alias="historyWindow",
        description="Keep delivered events this long for queries and replay.",
    )
    max_bytes: ByteSize | None = Field(
        default=None, alias="maxBytes",
        description="Byte budget of the spool (bytes, or '2Gi', '500MB'); unset = no limit.",
    )
    when_full: Literal["block", "dropOldest"] = Field(
        default="block", alias="whenFull",
        description="At maxBytes: 'block' stops reading the watch (relist later); 'dropOldest' "
        "deletes the oldest undelivered events, counted and logged.",
    )
    synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL", description="SQLite synchronous mode; FULL survives power loss."
    )
    batch_max_events: int = Field(
        default=500, ge=1, alias="batchMaxEvents", description="Most events per write transaction."
    )
    batch_max_wait: Duration = Field(
        default=0.05, alias="batchMaxWait",
        description="Longest time events wait for their write transaction.",
    )
    retention_interval: Duration = Field(
        default=60.0, alias="retentionInterval", description="How often retention runs."
    )

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class WatchConfig(Model):
    """How Events are listed and watched."""

    api_group: Literal["core", "events.k8s.io"] = Field(
        default="core", alias="apiGroup",
        description="Which API to read Events from: 'core' (v1) or 'events.k8s.io' (v1).",
    )
    namespaces: list[str] = Field(
        default_factory=list,
        description="Watch only these namespaces (merged with top-level `namespace`); empty = all.",
    )
    timeout_min: Duration = Field(
        default=300.0, alias="timeoutMin", description="Lower bound of the jittered watch timeout."
    )
    timeout_max: Duration = Field(
        default=600.0, alias="timeoutMax", description="Upper bound of the jittered watch timeout."
    )
    page_size: int = Field(default=500, ge=1, alias="pageSize", description="LIST page size.")
    backoff_initial: Duration = Field(
        default=0.8, alias="backoffInitial", description="First delay after a watch failure."
    )
    backoff_max: Duration = Field(
        default=30.0, alias="backoffMax", description="Largest delay between watch attempts."
    )

    @model_validator(mode="after")
    def _ordered(self) -> WatchConfig:
        if self.timeout_min > self.timeout_max:
            raise ValueError("timeoutMin must not exceed timeoutMax")
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoffInitial must not exceed backoffMax")
        return self


class HttpConfig(Model):
    """The one HTTP port: /metrics, /healthz, /readyz."""

    address: str = Field(default="0.0.0.0", description="Address to listen on.")
    port: int = Field(default=2112, ge=0, le=65535, description="Port to listen on.")


class Config(Model):
    """The eventpipe configuration file (a superset of kubernetes-event-exporter's)."""

    log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="info", alias="logLevel",
        description="Log level; resmo's trace/fatal/panic map to debug/error.",
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
    receivers: list[Receiver] = Field(
        default_factory=list, description="Named destinations the routes send to."
    )
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
    spool: SpoolConfig = Field(default_factory=SpoolConfig, description="eventpipe: the spool.")
    watch: WatchConfig = Field(default_factory=WatchConfig, description="eventpipe: the watch.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="eventpipe: HTTP server.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig,
                                   description="eventpipe: event-counter cardinality limits.")
    shutdown_timeout: Duration = Field(
        default=25.0, alias="shutdownTimeout",
        description="On SIGTERM, how long in-flight batches get to finish.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.lower()
            return _LOG_LEVEL_ALIASES.get(value, value)
        return value

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
