"""A size-rotated append-only file, compatible with lumberjack (what resmo's file sink uses).

resmo users point log shippers at the current file and at backups named the lumberjack way, so
the names and rules are kept: the current file is `path`; a rotated file is
`<stem>-<UTC time as 2006-01-02T15-04-05.000><ext>` in the same directory
(`events-2026-11-23T12-00-00.000.jsonl`); rotation happens before a write would make the file
larger than `max_bytes`; after a rotation (and on open) backups beyond `max_backups`, or whose
name-time is older than `max_age_s`, are deleted. Unlike lumberjack:

- `max_bytes == 0` means no size limit (lumberjack silently uses 100 MB).
- A batch is split at line boundaries across files instead of failing when it is larger than
  `max_bytes`; a single line larger than the limit gets a file of its own.
- Two rotations in the same millisecond do not overwrite a backup: the name moves on by 1 ms.
- A failed write is truncated back to where it started, so a retry cannot leave a torn line.

This class is synchronous and not thread-safe: `FileSink` calls it from one worker thread at a
time. Writes use `os.write` on an O_APPEND descriptor, so each batch reaches the OS (survives a
process kill) without user-space buffering; no fsync.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"
_DEFAULT_MODE = 0o644


class RotatingFile:
    """Appends newline-terminated lines to `path`, rotating like lumberjack."""

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int = 0,
        max_age_s: float = 0,
        max_backups: int = 0,
        clock: Callable[[], float],
    ) -> None:
        self.path = os.path.abspath(path)
        self._dir, base = os.path.split(self.path)
        self._stem, self._ext = os.path.splitext(base)
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._max_backups = max_backups
        self._clock = clock
        self._fd: int | None = None
        self._size = 0

    @property
    def is_open(self) -> bool:
        """True while a descriptor is held."""
        return self._fd is not None

    def open(self) -> None:
        """Create the directory if needed, open `path` for appending and prune old backups."""
        if self._fd is not None:
            return
        os.makedirs(self._dir, exist_ok=True)
        self._open_current(_DEFAULT_MODE)
        self._prune()

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Append each item plus a newline; one write per file the batch lands in."""
        if not lines:
            return
        self.open()
        if self._max_bytes <= 0:
            self._write(b"\n".join(lines) + b"\n")
            return
        start = 0
        pending = 0
        for i, line in enumerate(lines):
            n = len(line) + 1
            if self._size + pending + n > self._max_bytes and self._size + pending > 0:
                if pending:
                    self._write(b"\n".join(lines[start:i]) + b"\n")
                self._rotate()
                start, pending = i, 0
            pending += n
        self._write(b"\n".join(lines[start:]) + b"\n")

    def close(self) -> None:
        """Release the descriptor; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def backup_name(self, when: float) -> str:
        """The lumberjack name of a backup rotated at epoch seconds `when` (UTC)."""
        moment = datetime.fromtimestamp(when, UTC)
        stamp = f"{moment.strftime(_TIME_FORMAT)}.{moment.microsecond // 1000:03d}"
        return os.path.join(self._dir, f"{self._stem}-{stamp}{self._ext}")

    def backups(self) -> list[tuple[datetime, str]]:
        """Existing backups as (rotation time, path), newest first."""
        prefix = f"{self._stem}-"
        found: list[tuple[datetime, str]] = []
        for entry in os.listdir(self._dir):
            if not entry.startswith(prefix) or not entry.endswith(self._ext):
                continue
            stamp = entry[len(prefix) : len(entry) - len(self._ext)]
            try:
                when = datetime.strptime(stamp, _TIME_FORMAT + ".%f").replace(tzinfo=UTC)
            except ValueError:
                continue  # not ours (lumberjack skips such names too)
            found.append((when, os.path.join(self._dir, entry)))
        found.sort(reverse=True)
        return found

    def _open_current(self, mode: int) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        # Opening a directory for writing fails with IsADirectoryError, which FileSink reports.
        fd = os.open(self.path, flags, mode)
        try:
            size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        self._fd, self._size = fd, size

    def _write(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        before = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            # Drop what part of the batch got in, so the retried batch starts on a line start.
            try:
                os.ftruncate(fd, before)
            except OSError:
                log.warning("could not truncate %s after a failed write", self.path)
            self.close()
            raise
        self._size = before + len(data)

    def _rotate(self) -> None:
        mode = _DEFAULT_MODE
        self.close()
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
            when = self._clock()
            while os.path.exists(self.backup_name(when)):
                when += 0.001
            os.rename(self.path, self.backup_name(when))
        except FileNotFoundError:
            pass  # someone moved it away already: just start a new file
        self._open_current(mode)
        self._prune()

    def _prune(self) -> None:
        if self._max_backups <= 0 and self._max_age_s <= 0:
            return
        cutoff = datetime.fromtimestamp(self._clock(), UTC) - timedelta(seconds=self._max_age_s)
        for index, (when, backup) in enumerate(self.backups()):
            too_many = 0 < self._max_backups <= index
            too_old = self._max_age_s > 0 and when < cutoff
            if too_many or too_old:
                try:
                    os.remove(backup)
                except OSError as exc:
                    # Pruning is housekeeping: it must never fail the write that triggered it.
                    log.warning("could not remove old backup %s: %s", backup, exc)
