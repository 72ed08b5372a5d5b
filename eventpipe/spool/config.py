"""The `spool:` section: where the SQLite spool lives, its budget, and how it writes."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from eventpipe.core.model import Model
from eventpipe.core.units import ByteSize, Duration
from eventpipe.spool.counting import MAX_UIDS, RECENT_UIDS


class SpoolConfig(Model):
    """The durable SQLite buffer between the watch and the sinks."""

    path: str = Field(default="/var/lib/eventpipe/spool.db",
                      description="SQLite database file; unset: $EVENTPIPE_SPOOL if set.")
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
    buffer_max_events: int | None = Field(
        default=None, ge=1, alias="bufferMaxEvents",
        description="Most events read from the watch and not yet committed; unset = 8 × "
        "batchMaxEvents. When full, eventpipe stops reading the watch.",
    )
    buffer_max_bytes: ByteSize = Field(
        default=16 * 1024 * 1024, ge=64 * 1024, alias="bufferMaxBytes",
        description="Most bytes of Event bodies read from the watch and not yet committed.",
    )
    writer_cache_size: ByteSize = Field(
        default=2 * 1024 * 1024, ge=64 * 1024, alias="writerCacheSize",
        description="SQLite page cache of the write connection.",
    )
    reader_cache_size: ByteSize = Field(
        default=1024 * 1024, ge=64 * 1024, alias="readerCacheSize",
        description="SQLite page cache of the connection receivers read from.",
    )
    occurrence_book_max_uids: int = Field(
        default=MAX_UIDS, ge=2, alias="occurrenceBookMaxUids",
        description="Most Event uids whose last count the spool remembers, so that a new "
        "version's metric delta is the count's growth (16 bytes each, 80 while among the "
        "newest occurrenceBookRecentUids; uids of the last one to two hours). A uid past the "
        "bound counts its full count again at its next version: the metric overcounts, no "
        "event is lost.",
    )
    occurrence_book_recent_uids: int = Field(
        default=RECENT_UIDS, ge=1, alias="occurrenceBookRecentUids",
        description="Most of the newest occurrence-book entries held in a hash table (~80 "
        "bytes each) before they are merged into its sorted arrays (16 bytes each). Larger: "
        "fewer, longer merges, more memory; at half of occurrenceBookMaxUids or more the "
        "newest half of the book is a hash table throughout.",
    )
    retention_interval: Duration = Field(
        default=60.0, alias="retentionInterval", description="How often retention runs."
    )

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _path_from_environment(cls, data: Any) -> Any:
        """An unset `path` is $EVENTPIPE_SPOOL when set: a config copied from a guide, which
        has no `spool:` section, then needs no edit to run where the default is not writable."""
        spool = os.environ.get("EVENTPIPE_SPOOL")
        if spool and isinstance(data, dict) and "path" not in data:
            return {**data, "path": spool}
        return data
