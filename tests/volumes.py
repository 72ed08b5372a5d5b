"""A small real filesystem for disk-full tests: a tmpfs of a few MiB mounted under tmp_path.

Mounting needs root (CAP_SYS_ADMIN). A test not running as root is skipped with that reason
rather than faked (as root, a mount that fails is a failure: CI runs as root, and a skip there
would hide it): an SQLite fault hook would not show what a full disk does to the
WAL, its checkpoints and the shared-memory file, which is what these tests are about.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = "filler"
"""Name of the file `fill` writes to take the volume's free space."""


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """Mount a tmpfs with mount `options` at `where` (created) for the duration of the block."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs at {where}: {done.stderr.strip()}"
        if os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(f"{message} (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@contextlib.contextmanager
def small_volume(where: Path, *, mib: int) -> Iterator[Path]:
    """A writable `mib` MiB tmpfs at `where` for the duration of the block."""
    with tmpfs(where, f"size={mib}m,mode=0755") as volume:
        yield volume


def free_bytes(volume: Path) -> int:
    """Bytes an unprivileged writer may still allocate on `volume`."""
    stat = os.statvfs(volume)
    return stat.f_bavail * stat.f_frsize


def fill(volume: Path, *, leave: int = 0) -> int:
    """Write a filler file until the volume has at most `leave` bytes free; returns its size."""
    path = volume / FILLER
    chunk = b"\0" * (64 * 1024)
    with path.open("ab", buffering=0) as handle:
        while (room := free_bytes(volume) - leave) > 0:
            try:
                handle.write(chunk[:room])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return path.stat().st_size


def release(volume: Path) -> None:
    """Give the filler's space back."""
    (volume / FILLER).unlink(missing_ok=True)
