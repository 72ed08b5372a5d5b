"""The `file` receiver: Events as JSON lines in a size-rotated file (resmo's `file` sink).

Config keys follow resmoio/kubernetes-event-exporter (`path`, `layout`, `maxsize` in MB,
`maxage` in days, `maxbackups`, `deDot`); the rotation rules are lumberjack's and live in
`eventpipe.sinks.file.rotation`, the line format in `eventpipe.sinks.encoding`.

A batch is written with one `os.write` per file it lands in, from a worker thread
(`asyncio.to_thread`): a batch can be ~1 MB and a slow disk must not stall the watcher sharing
the loop. Once `send` returns, the lines are in the OS page cache, so killing the process loses
nothing already acknowledged (a power cut can; there is no fsync, as in resmo).

Errors — the choice made here:

- `start()`: a path that is a directory, a parent that is a file, or permission denied are
  deployment mistakes no retry can fix: `PermanentSinkError`. Any other `OSError` (disk full,
  I/O error, a volume not mounted yet) may clear: it is logged and `start()` returns, so the
  worker runs; the next `send` opens the file again and raises `RetriableSinkError` while it
  still fails, which the driver retries with backoff.
- `send()`: every `OSError` is `RetriableSinkError`, including the cases above (say, the file was
  replaced by a directory later). A permanent error would make the driver dead-letter the batch,
  but the events are not at fault: they stay in the spool, counted, until the disk is fixed.
  The descriptor is dropped after a failed write and the file reopened on the next send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from eventpipe.delivery.contract import ItemFailure, PermanentSinkError, RetriableSinkError
from eventpipe.sinks.encoding import EncodesLines, LineEncoder
from eventpipe.sinks.file.config import FileSinkConfig
from eventpipe.sinks.file.rotation import RotatingFile

log = logging.getLogger(__name__)

_MB = 1024 * 1024  # lumberjack's megabyte
_DAY = 24 * 60 * 60
# Errors at start() that mean the configuration or the deployment is wrong.
_PERMANENT_AT_START = (IsADirectoryError, NotADirectoryError, PermissionError)


class FileSink(EncodesLines):
    """Appends one JSON line per event to `path`, rotating by size like lumberjack."""

    def __init__(
        self,
        *,
        name: str,
        path: str,
        layout: object | None,
        max_size_mb: int = 0,
        max_age_days: int = 0,
        max_backups: int = 0,
        de_dot: bool = False,
        cluster_name: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not path:
            raise ValueError(f"receivers.{name}.file.path: must not be empty")
        self.name = name
        self._encoder = LineEncoder(
            name=name, layout=layout, de_dot=de_dot, cluster_name=cluster_name
        )
        self._file = RotatingFile(
            path,
            max_bytes=max_size_mb * _MB,
            max_age_s=max_age_days * _DAY,
            max_backups=max_backups,
            clock=clock,
        )
        # Serialises the worker-thread calls: close() may race an in-flight send at shutdown.
        self._lock = asyncio.Lock()

    @property
    def path(self) -> str:
        """The absolute path of the current (not yet rotated) file."""
        return self._file.path

    async def start(self) -> None:
        """Create the directory and open the file; a second call does nothing."""
        async with self._lock:
            try:
                await asyncio.to_thread(self._file.open)
            except _PERMANENT_AT_START as exc:
                raise PermanentSinkError(f"receivers.{self.name}: cannot open: {exc}") from exc
            except OSError as exc:
                log.warning("receivers.%s: cannot open %s yet: %s", self.name, self.path, exc)

    async def send(self, payloads: Sequence[bytes]) -> Sequence[ItemFailure]:
        """Append the batch in order; raises `RetriableSinkError` when the write failed."""
        if not payloads:
            return []
        async with self._lock:
            try:
                await asyncio.to_thread(self._file.write_lines, payloads)
            except OSError as exc:
                raise RetriableSinkError(f"receivers.{self.name}: write failed: {exc}") from exc
        return []

    async def close(self) -> None:
        """Release the file; safe to call twice (and before start)."""
        async with self._lock:
            if self._file.is_open:
                await asyncio.to_thread(self._file.close)


def build_sink(config: FileSinkConfig, *, name: str, cluster_name: str) -> FileSink:
    """The registry's factory: a `FileSink` from the `file:` model."""
    return FileSink(name=name, path=config.path, layout=config.layout,
                    max_size_mb=config.max_size, max_age_days=config.max_age,
                    max_backups=config.max_backups, de_dot=config.de_dot,
                    cluster_name=cluster_name)
