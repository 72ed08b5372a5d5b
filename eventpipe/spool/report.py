"""`eventpipe spool stats`: open a spool (from a config or a path) and render its numbers."""

from __future__ import annotations

import os
import time
from typing import Any

from eventpipe.config import Config
from eventpipe.spool.gaps import Gap, describe
from eventpipe.spool.spool import Spool


async def spool_stats_for(*, config: Config | None, path: str | None) -> dict[str, Any]:
    """Stats of the spool named by `config` (its receivers listed) or at `path`."""
    if config is not None:
        spool_path: str = str(config.spool.path)
        receivers = [r.name for r in config.receivers]
        max_bytes = config.spool.max_bytes
    else:
        assert path is not None
        spool_path, receivers, max_bytes = path, [], None
    if not _exists(spool_path):
        raise FileNotFoundError(f"no spool at {spool_path}")
    spool = await Spool.open(spool_path, max_bytes=max_bytes)
    try:
        stats = await spool.stats(receivers)
    finally:
        await spool.close()
    stats["path"] = spool_path
    return stats


def _exists(path: str) -> bool:
    # A stat before opening, so a typo does not create an empty spool.
    return os.path.exists(path)


def _when(epoch: Any) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch)))


def _size(n: Any) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GiB"


def render_stats(stats: dict[str, Any]) -> str:
    """Human-readable report."""
    budget = stats.get("max_bytes")
    lines = [
        f"spool:        {stats.get('path', '')}",
        f"events:       {stats['events']} (head seq {stats['head_seq']})",
        f"size:         {_size(stats['bytes'])}"
        + (f" of {_size(budget)} budget" if budget else " (no budget)")
        + f", {_size(stats.get('free_bytes'))} free pages",
        f"observed:     {_when(stats['oldest_observed_at'])} .. "
        f"{_when(stats['newest_observed_at'])}",
        f"event time:   {_when(stats['oldest_event_time'])} .. "
        f"{_when(stats['newest_event_time'])}",
        f"dead letters: {stats['dead_letters']}",
        f"watch gaps:   {stats['gaps']} ({stats['occurrences_missed']} occurrences missed "
        "by count)",
        *(f"  {_when(g['observed_at'])} {describe(Gap(**g))}" for g in stats["recent_gaps"]),
        "",
        f"{'RECEIVER':<24} {'ACKED SEQ':>10} {'LAG EVENTS':>11} {'LAG SECONDS':>12} "
        f"{'DEAD':>6}",
    ]
    for name, r in sorted(stats["receivers"].items()):
        lines.append(f"{name:<24} {r['acked_seq']:>10} {r['lag_events']:>11} "
                     f"{r['lag_seconds']:>12.1f} {r['dead_letters']:>6}")
    return "\n".join(lines)
