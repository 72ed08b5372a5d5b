"""Room kept in hand for a full disk: a preallocated file beside the spool.

When the disk under the spool fills (whatever filled it), SQLite cannot grow its WAL, so not
only appends fail but also the receivers' acks, retention's deletes and the checkpoint that
would let the WAL start over: delivery stalls although every stored event could still be
sent. The spool therefore keeps `spool.db-reserve` (RESERVE_BYTES, allocated at open). At the
first disk-full error it deletes that file, which gives the acks, deletes and checkpoints
room to commit, and holds appends (under `whenFull: block`) until the disk has room for the
reserve and then some (`resume_free`), when the file is allocated again and appends resume;
under `dropOldest` appends go on in the room the dropped events leave. Meanwhile the WAL is
made to start over whenever it passes a quarter of the reserve, so it keeps reusing that room.

The room appends resume at scales with the space the spool can have: a quarter of the volume
(of `maxBytes` when smaller), at most the reserve again (8 MiB with it) and never less than
the reserve plus what the waiting append needs. On a 20 MiB volume that is 5 MiB: a fixed
8 MiB left the watch paused for good once the events stored and the WAL took more than 12 MiB,
although the room was there. An append bigger than the room is cut by the writer
(`SpoolFullError.retry_smaller`) rather than waiting for room that may never come.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from eventpipe.spool.disk import MIB, free_bytes, volume_bytes

log = logging.getLogger("eventpipe.spool")

RESERVE_BYTES = 4 * MIB
RESUME_FRACTION = 4
"""Appends resume once a 1/RESUME_FRACTION of the volume (or budget) is free, at most."""
ROW_OVERHEAD = 256
"""Bytes a stored row takes beyond its body: its other columns and its index entries."""
MIN_APPEND_ROOM = 1 * MIB
"""Room the smallest resume threshold leaves after the reserve: one default-sized append."""


def resume_free(*, reserve: int, scale: int) -> int:
    """Free bytes (the reserve's own included) at which appends resume on a volume or budget
    of `scale` bytes: a 1/RESUME_FRACTION of it, between reserve + MIN_APPEND_ROOM and twice
    the reserve."""
    return max(reserve + MIN_APPEND_ROOM, min(2 * reserve, scale // RESUME_FRACTION))


def append_room(body_bytes: int, rows: int) -> int:
    """Disk an append of `rows` rows with `body_bytes` of bodies may take: its database pages
    and as many again in the WAL (when the WAL file has to grow to hold them)."""
    return 2 * (body_bytes + rows * ROW_OVERHEAD)


class DiskReserve:
    """The reserve file of one spool."""

    def __init__(self, spool_path: Path, size: int = RESERVE_BYTES, *,
                 budget: int | None = None) -> None:
        self.path = spool_path.with_name(spool_path.name + "-reserve")
        self.size = size
        self.held = False
        volume = volume_bytes(spool_path)
        scale = min(volume, budget) if budget else volume
        self.resume_at = resume_free(reserve=size, scale=scale)
        """Free bytes (this file's own included) at which appends resume, before what the
        waiting append itself needs."""

    def wanted(self, room: int = 0) -> int:
        """Free bytes (this file's own included) needed to take the reserve and still have
        `room` for an append."""
        return max(self.resume_at, self.size + room)

    def available(self) -> int:
        """Free bytes, counting the room this file holds when it is there."""
        present = self.path.stat().st_size if self.path.exists() else 0
        return free_bytes(self.path) + present

    def take(self, room: int = 0) -> bool:
        """Allocate the file if it is not held and the disk has `wanted(room)` free (so the
        append it lets resume does not fill the disk at once); True when held."""
        if self.held:
            return True
        if self.available() < self.wanted(room):
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.unlink()
            log.warning("cannot allocate the spool's disk reserve", extra={
                "path": str(self.path), "error": exc.strerror or str(exc)})
            return False
        self.held = True
        return True

    def release(self) -> bool:
        """Give the reserve to SQLite (a disk-full error); True if it was held."""
        if not self.held:
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.held = False
        log.warning("disk full: released the spool's reserve so acks and deletes can commit; "
                    "appends wait for room (whenFull: block) or drop the oldest events",
                    extra={"path": str(self.path), "bytes": self.size})
        return True
