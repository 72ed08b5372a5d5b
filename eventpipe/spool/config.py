"""The `spool:` section: where the SQLite spool lives, its budget, and how it writes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from eventpipe.core.model import Model
from eventpipe.core.units import ByteSize, Duration


class SpoolConfig(Model):
    """The durable SQLite buffer between the watch and the sinks."""

    path: str = Field(default="/var/lib/eventpipe/spool.db", description="SQLite database file.")
    history_window: Duration = Field(
        default=7 * 86400.0, alias="historyWindow",
        description="Keep delivered events this long for queries and replay.",
    )
    max_bytes: ByteSize | None = Field(
        default=None, alias="maxBytes",
        description="Byte budget of the spool on disk (bytes, or '2Gi', '500MB'): the database, "
        "its WAL and the WAL index together; a 4 MiB reserve file for a full disk comes on top. "
        "Unset = no limit.",
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
