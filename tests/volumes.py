"""A small real filesystem for disk-full tests: a tmpfs of a few MiB mounted under tmp_path.

Mounting needs root (CAP_SYS_ADMIN). Where the test cannot mount, it is skipped with that
reason rather than faked: an SQLite fault hook would not show what a full disk does to the
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
def small_volume(where: Path, *, mib: int) -> Iterator[Path]:
    """Mount a `mib` MiB tmpfs at `where` for the duration of the block (skip if we cannot)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


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
