"""Config of the `file:` receiver: resmo's keys (`path`, `layout`, `maxsize` in MB, `maxage` in
days, `maxbackups`, `deDot`; `sentUpdateEvent` accepted and ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from eventpipe.sinks.config import DEDOT_DOC, LAYOUT_DOC, SENT_UPDATE_DOC, SinkConfig


class FileSinkConfig(SinkConfig):
    """Append one JSON document per event to a file, with size-based rotation."""

    path: str = Field(min_length=1, description="File to append events to (created if missing).")
    layout: Any = Field(default=None, description=LAYOUT_DOC)
    max_size: int = Field(
        default=0, ge=0, alias="maxsize",
        description="Rotate when the file reaches this many megabytes; 0 = never rotate.",
    )
    max_age: int = Field(
        default=0, ge=0, alias="maxage",
        description="Delete rotated files older than this many days; 0 = keep regardless of age.",
    )
    max_backups: int = Field(
        default=0, ge=0, alias="maxbackups",
        description="Keep at most this many rotated files; 0 = keep all (subject to maxage).",
    )
    de_dot: bool = Field(default=False, alias="deDot", description=DEDOT_DOC)
    sent_update_event: bool | None = Field(
        default=None, alias="sentUpdateEvent", description=SENT_UPDATE_DOC
    )

    def waits_for_batch(self) -> bool:
        """False: a local write gains nothing from a fuller batch."""
        return False
