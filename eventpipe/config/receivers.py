"""A receiver: a name, exactly one sink, and eventpipe's per-receiver delivery policy.

A receiver model is generated from the registry (`SINK_MODELS`), one optional field per sink
key, so the JSON Schema and validation errors name the real YAML keys
(``receivers[0].file.maxsize``) and a new sink needs no change here. `receiver_model(keys)`
builds it from only the given keys, importing only their config models: the loader passes the
keys a file uses (`sink_keys_in`), so a receiver type nobody configured costs no memory. Every
registry key is still recognised as a receiver type in error messages. `Receiver` is the model
of every key (the JSON Schema and the reference use it), built when first named.
`ReceiverBase.sink_type` and `.sink` give the one that is set.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from eventpipe import __version__
from eventpipe.config.sinks import RESMO_SINK_TYPES, SINK_MODELS, SinkConfig
from eventpipe.core.model import Model
from eventpipe.delivery.config import (
    BatchConfig,
    FiltersConfig,
    RateLimitConfig,
    RetryConfig,
    ThrottleConfig,
)

__all__ = ["BatchConfig", "Receiver", "ReceiverBase", "RetryConfig", "receiver_model",
           "sink_keys_in"]

_COMMON_KEYS = frozenset({"name", "retry", "batch", "throttle", "rateLimit", "rate_limit",
                          "filters"})


def _receiver_schema(schema: dict[str, Any], model: type[ReceiverBase]) -> None:
    # "Exactly one sink key" in JSON Schema terms: oneOf over required single keys.
    schema["oneOf"] = [{"required": [key]} for key in model.sink_keys]


class ReceiverBase(Model):
    """Fields and checks shared by every receiver; see `Receiver`."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra=_receiver_schema)
    sink_keys: ClassVar[tuple[str, ...]] = ()
    """The sink keys this model has a field for (`receiver_model`), in registry order."""

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
        for key in self.sink_keys:
            if getattr(self, key, None) is not None:
                return key
        raise AssertionError("validated receiver without a sink")  # pragma: no cover

    @property
    def sink(self) -> SinkConfig:
        """The config model of this receiver's sink."""
        sink: SinkConfig = getattr(self, self.sink_type)
        return sink


def sink_keys_in(receivers: object) -> set[str]:
    """The registry's sink keys that raw receiver entries (a YAML list of mappings) use;
    anything that is not such a list gives none, and validation reports it."""
    if not isinstance(receivers, list):
        return set()
    return {key for entry in receivers if isinstance(entry, dict)
            for key in entry if key in SINK_MODELS}


def receiver_model(keys: Iterable[str]) -> type[ReceiverBase]:
    """The receiver model with a field for each of `keys` (registry keys), importing only their
    config models; one model per set of keys."""
    wanted = set(keys)
    return _receiver_model(tuple(key for key in SINK_MODELS if key in wanted))


@functools.cache
def _receiver_model(keys: tuple[str, ...]) -> type[ReceiverBase]:
    fields: dict[str, Any] = {}
    for key in keys:
        sink = SINK_MODELS[key]
        fields[key] = (sink | None, Field(default=None, description=sink.__doc__))
    model: type[ReceiverBase] = create_model(
        "Receiver",
        __base__=ReceiverBase,
        __doc__="A named destination: exactly one sink key plus eventpipe's delivery policy.",
        __module__=__name__,
        **fields,
    )
    model.sink_keys = keys
    return model


if TYPE_CHECKING:
    Receiver = ReceiverBase
else:
    def __getattr__(name: str) -> type[ReceiverBase]:
        """`Receiver`, the model of every registered sink key, built when first named."""
        if name == "Receiver":
            return receiver_model(SINK_MODELS)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
