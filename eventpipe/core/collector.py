"""The cyclic garbage collector's settings for a running pipeline.

Events are handled in batches: a watch read, a spool commit or a receiver's batch holds
thousands of parsed dicts and row tuples at once, which all die by reference counting a moment
later. With CPython's default first-generation threshold (700 net container allocations) each
such batch triggers collections that traverse it, promote it to the older generations and set
off full collections over the whole heap, although there is no cycle to find; the spool's rows
are NamedTuples, which unlike plain tuples the collector never stops tracking. A threshold
above one batch's objects leaves only the collections that find garbage (docs/performance.md).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations before a young collection (CPython's default is 700)."""


def tune_collector() -> None:
    """Freeze what startup built (it lives as long as the process) and raise the threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_long_lived() -> None:
    """Freeze what exists now (after a collection), for a large structure built once after
    startup that lives as long as the process: the enrichment caches' first lists (an
    `ObjectInfo` and its maps per object, which each full collection would traverse again;
    docs/performance.md). Frozen objects are still freed by reference counting."""
    gc.collect()
    gc.freeze()
