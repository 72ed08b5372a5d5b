"""Durable SQLite spool between the watcher and the sink workers (docs/architecture.md)."""

from eventpipe.spool.errors import SpoolError, SpoolFullError, SpoolSchemaError
from eventpipe.spool.records import NewRecord, StoredRow
from eventpipe.spool.spool import Spool

__all__ = ["NewRecord", "Spool", "SpoolError", "SpoolFullError", "SpoolSchemaError", "StoredRow"]
