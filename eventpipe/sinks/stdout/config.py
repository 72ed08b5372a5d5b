"""Config of the `stdout:` receiver: resmo's keys (`layout`, `deDot`; `sentUpdateEvent`
accepted and ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from eventpipe.sinks.config import DEDOT_DOC, LAYOUT_DOC, SENT_UPDATE_DOC, SinkConfig


class StdoutSinkConfig(SinkConfig):
    """Write one JSON document per event to standard output."""

    layout: Any = Field(default=None, description=LAYOUT_DOC)
    de_dot: bool = Field(default=False, alias="deDot", description=DEDOT_DOC)
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent", description=SENT_UPDATE_DOC
    )

    def waits_for_batch(self) -> bool:
        """False: a local write gains nothing from a fuller batch."""
        return False
