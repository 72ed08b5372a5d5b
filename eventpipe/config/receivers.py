"""A receiver: a name, exactly one sink, and eventpipe's per-receiver delivery policy.

The `Receiver` model is generated from `SINK_MODELS`, one optional field per sink key, so the
JSON Schema and validation errors name the real YAML keys (``receivers[0].file.maxsize``) and a
new sink needs no change here. `Receiver.sink_type` and `Receiver.sink` give the one that is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from eventpipe import __version__
from eventpipe.config.sinks import RESMO_SINK_TYPES, SINK_MODELS, SinkConfig
from eventpipe.config.storm import FiltersConfig, RateLimitConfig, ThrottleConfig
from eventpipe.core.model import Model
from eventpipe.core.units import Duration


class RetryConfig(Model):
    """How a receiver retries a batch that failed with a retriable error."""

    initial_backoff: Duration = Field(
        default=0.5, alias="initialBackoff",
        description="First retry delay (upper bound of the full-jitter window); doubles "
        "per attempt.",
    )
    max_backoff: Duration = Field(
        default=300.0, alias="maxBackoff", description="Largest retry delay."
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


_COMMON_KEYS = frozenset({"name", "retry", "batch", "throttle", "rateLimit", "rate_limit",
                          "filters"})


def _receiver_schema(schema: dict[str, Any]) -> None:
    # "Exactly one sink key" in JSON Schema terms: oneOf over required single keys.
    schema["oneOf"] = [{"required": [key]} for key in SINK_MODELS]


class ReceiverBase(Model):
    """Fields and checks shared by every receiver; see `Receiver`."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra=_receiver_schema)

    name: str = Field(
        min_length=1,
        description="Unique receiver name; route rules send to it with `receiver: <name>`.",
    )
    retry: RetryConfig = Field(
        default_factory=RetryConfig, description="eventpipe: retry policy for this receiver."
    )
    batch: BatchConfig = Field(
        default_factory=BatchConfig, description="eventpipe: batching for this receiver."
    )
    throttle: ThrottleConfig | None = Field(
        default=None,
        description="eventpipe: storm control; the first event of a key is sent, repeats "
        "within the window are counted into one summary sent when the window ends.",
    )
    rate_limit: RateLimitConfig | None = Field(
        default=None, alias="rateLimit",
        description="eventpipe: most events per minute to this receiver (waits, never drops).",
    )
    filters: FiltersConfig | None = Field(
        default=None,
        description="eventpipe: kube-eventer style filters on top of the route tree.",
    )

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        sinks = [key for key in data if key not in _COMMON_KEYS]
        for key in sinks:
            if key in SINK_MODELS:
                continue
            if key in RESMO_SINK_TYPES:
                raise PydanticCustomError(
                    "sink_unsupported",
                    "receiver type '{sink}' is not supported yet by eventpipe {version}",
                    {"sink": key, "version": __version__, "at": (key,)},
                )
            raise PydanticCustomError(
                "sink_unknown",
                "unknown key '{sink}': not a receiver type (eventpipe implements: {known})",
                {"sink": key, "known": ", ".join(SINK_MODELS), "at": (key,)},
            )
        if not sinks:
            raise PydanticCustomError(
                "sink_missing",
                "no receiver type given: add one of {known}",
                {"known": ", ".join(SINK_MODELS)},
            )
        if len(sinks) > 1:
            raise PydanticCustomError(
                "sink_many",
                "has {count} receiver types ({sinks}); a receiver takes exactly one",
                {"count": len(sinks), "sinks": ", ".join(sinks), "at": (sinks[1],)},
            )
        # `stdout:` with nothing after it means "stdout with defaults", as in resmo's chart.
        if data[sinks[0]] is None:
            data = {**data, sinks[0]: {}}
        return data

    @property
    def sink_type(self) -> str:
        """The sink key this receiver uses (``"file"``, ``"stdout"``, ...)."""
        for key in SINK_MODELS:
            if getattr(self, key, None) is not None:
                return key
        raise AssertionError("validated receiver without a sink")  # pragma: no cover

    @property
    def sink(self) -> SinkConfig:
        """The config model of this receiver's sink."""
        sink: SinkConfig = getattr(self, self.sink_type)
        return sink


if TYPE_CHECKING:
    Receiver = ReceiverBase
else:
    Receiver = create_model(
        "Receiver",
        __base__=ReceiverBase,
        __doc__="A named destination: exactly one sink key plus eventpipe's delivery policy.",
        __module__=__name__,
        **{
            key: (model | None, Field(default=None, description=model.__doc__))
            for key, model in SINK_MODELS.items()
        },
    )
