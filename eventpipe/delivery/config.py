"""The delivery keys of a receiver: `retry`, `batch`, and storm control (`throttle`,
`rateLimit`, `filters`), each model the reference docs of its key.

Storm control. A crash-looping pod emits a BackOff Event version every few seconds; an IM bot
that posts each one buries the channel and trips the bot's own limit (WeCom: 20 messages a
minute). These three keys sit on any receiver, next to `retry` and `batch`, and apply after the
route tree chose the receiver:

- `filters` (kube-eventer's): drop what this receiver should never see (level, namespaces,
  kinds, reason regexes);
- `throttle`: one message when a storm starts and one summary with a count when its window
  ends (eventpipe.delivery.throttle);
- `rateLimit`: never post faster than the peer allows; what waits stays in the spool
  (eventpipe.delivery.ratelimit).

Field descriptions are the reference docs (docs/configuration.md, chart schema).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from eventpipe.core.model import Model, check_pattern
from eventpipe.core.units import Duration

KeyField = Literal["cluster", "namespace", "kind", "name", "reason", "type"]
"""What a throttle key can be made of (clusterName, metadata.namespace, involvedObject.kind,
involvedObject.name, reason, type; events.k8s.io objects read `regarding`)."""

DEFAULT_KEY: tuple[KeyField, ...] = ("cluster", "namespace", "kind", "name", "reason")


class ThrottleConfig(Model):
    """One message per storm: the first event of a key as usual, then one summary per window."""

    window: Duration = Field(
        default=300.0, gt=0,
        description="Events with the same key within this time after the first one are not "
        "sent; when the window ends, the last of them is sent once with the count "
        "(templates: `.Throttle.Suppressed`, `.Throttle.Versions`, `.Throttle.Window`).",
    )
    key: list[KeyField] = Field(
        default=list(DEFAULT_KEY), min_length=1,
        description="Event fields that make two events \"the same\" for the throttle: "
        "cluster, namespace, kind, name (of the involved object), reason, type.",
    )


class RateLimitConfig(Model):
    """A token bucket in front of the receiver: bursts up to `perMinute`, then that rate."""

    per_minute: int = Field(
        ge=1, alias="perMinute",
        description="Most events sent per minute (burst = perMinute); the worker waits when "
        "the bucket is empty and the waiting events stay in the spool.",
    )


class FiltersConfig(Model):
    """kube-eventer's per-sink filters, applied after the route tree; empty = no condition."""

    level: Literal["Normal", "Warning"] = Field(
        default="Normal",
        description="`Warning`: only Warning events pass; `Normal`: every event passes "
        "(kube-eventer's level semantics: Normal and above).",
    )
    namespaces: list[str] = Field(
        default_factory=list, description="Only events in these namespaces (exact names)."
    )
    kinds: list[str] = Field(
        default_factory=list,
        description="Only events whose involved object is of one of these kinds (exact).",
    )
    reasons: list[Annotated[str, AfterValidator(check_pattern)]] = Field(
        default_factory=list,
        description="Only events whose reason matches one of these regexes (unanchored, as "
        "route rules); a regex that does not compile is a startup error.",
    )


class RetryConfig(Model):
    """How a receiver retries a batch that failed with a retriable error."""

    initial_backoff: Duration = Field(
        default=0.5, alias="initialBackoff",
        description="First retry delay (upper bound of the full-jitter window); doubles "
        "per attempt.",
    )
    max_backoff: Duration = Field(
        default=30.0, alias="maxBackoff",
        description="Largest retry delay: after an outage, the longest a receiver that is "
        "back can wait for its next try (resmo and kube-eventer send as soon as it answers "
        "again; they drop what failed meanwhile, eventpipe keeps it spooled).",
    )
    max_attempts: int = Field(
        default=0, ge=0, alias="maxAttempts",
        description="Attempts before the events go to dead letters; 0 = retry forever.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.initial_backoff > self.max_backoff:
            raise ValueError("initialBackoff must not exceed maxBackoff")
        return self


class BatchConfig(Model):
    """How many events a receiver sends per request."""

    max_events: int = Field(
        default=500, ge=1, alias="maxEvents", description="Most events in one send."
    )
    max_wait: Duration = Field(
        default=1.0, alias="maxWait",
        description="Longest time a partial batch waits for more events before it is sent.",
    )
