"""Keep resident memory flat under bursts (glibc only; a no-op elsewhere).

Parsed Event bodies are mostly larger than pymalloc's 512-byte limit, so they come from glibc
malloc. By default glibc gives each thread that allocates (the event loop, aiosqlite's SQLite
threads) its own arena and keeps freed memory mapped, so a burst leaves the peak resident for
good. Two arenas and a periodic `malloc_trim` return it; both are cheap.

Large blocks (a commit's statement parameters, a batch's joined payload, a watch read: 128 KiB
to several MiB each) are mmapped by glibc and unmapped when freed, but glibc raises that
threshold to the size of each such block freed, up to 32 MiB, after which they come from the
heap, where the freed space waits for reuse among small objects that keep it resident. A
fixed threshold keeps them mmapped: ~6 MiB off the 200,000-event burst's peak
(docs/performance.md), for a page fault per 4 KiB of each large block.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("eventpipe.memory")

_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024
"""glibc's initial threshold, fixed (setting it turns the dynamic adjustment off)."""


class Malloc:
    """Handle on glibc's malloc tuning calls, or inert when not on glibc."""

    def __init__(self) -> None:
        self._libc: ctypes.CDLL | None = None
        name = ctypes.util.find_library("c")
        if not name:
            return
        try:
            libc = ctypes.CDLL(name)
            libc.mallopt  # noqa: B018 - probe: glibc has it, musl does not
            libc.malloc_trim  # noqa: B018
        except (OSError, AttributeError):
            return
        self._libc = libc

    def limit_arenas(self, count: int = 2) -> None:
        """Cap the number of malloc arenas (call before threads start allocating)."""
        if self._libc is not None:
            self._libc.mallopt(_M_ARENA_MAX, count)

    def fix_mmap_threshold(self, size: int = MMAP_THRESHOLD) -> None:
        """Serve blocks of `size` bytes and more by mmap, whatever was freed before."""
        if self._libc is not None:
            self._libc.mallopt(_M_MMAP_THRESHOLD, size)

    def trim(self) -> None:
        """Give freed heap pages back to the OS."""
        if self._libc is not None:
            self._libc.malloc_trim(0)
