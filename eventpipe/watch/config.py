"""The `watch:` section: which Events API is listed and watched, and the watch's timings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eventpipe.core.model import Model
from eventpipe.core.units import ByteSize, Duration


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
    read_buffer_size: ByteSize = Field(
        default=256 * 1024, ge=16 * 1024, alias="readBufferSize",
        description="Bytes read from the watch stream at a time; the HTTP client buffers at "
        "most twice this much unread (memory: docs/performance.md).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> WatchConfig:
        if self.timeout_min > self.timeout_max:
            raise ValueError("timeoutMin must not exceed timeoutMax")
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoffInitial must not exceed backoffMax")
        return self
