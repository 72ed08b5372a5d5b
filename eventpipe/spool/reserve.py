"""Room kept in hand for a full disk: a preallocated file beside the spool.

When the disk under the spool fills (whatever filled it), SQLite cannot grow its WAL, so not
only appends fail but also the receivers' acks, retention's deletes and the checkpoint that
would let the WAL start over: delivery stalls although every stored event could still be
sent. The spool therefore keeps `spool.db-reserve` (RESERVE_BYTES, allocated at open). At the
first disk-full error it deletes that file, which gives the acks, deletes and checkpoints
room to commit, and holds appends (under `whenFull: block`) until the disk has the reserve
and as much again free, when the file is allocated again and appends resume; under
`dropOldest` appends go on in the room the dropped events leave. Meanwhile the WAL is made to
start over whenever it passes a quarter of the reserve, so it keeps reusing that room.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from eventpipe.spool.disk import MIB, free_bytes

log = logging.getLogger("eventpipe.spool")

RESERVE_BYTES = 4 * MIB


class DiskReserve:
    """The reserve file of one spool."""

    def __init__(self, spool_path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = spool_path.with_name(spool_path.name + "-reserve")
        self.size = size
        self.held = False

    def take(self) -> bool:
        """Allocate the file if it is not held and the disk has the reserve and as much again
        free (so the appends it lets resume do not fill it at once); True when held."""
        if self.held:
            return True
        present = self.path.stat().st_size if self.path.exists() else 0
        if free_bytes(self.path) + present < 2 * self.size:
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
