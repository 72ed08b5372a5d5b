"""Measurement 5, history queries: `eventpipe events` against a spool of 1,000,000 events.

The spool is the rss measurement's pre-fill (`bench.rss.prefill`: corpus-derived rows observed
over the last 24 h, cached in bench/out/work), opened once by `Spool.open` so it carries the
current schema's indexes. Each query is the command's own code path (`eventpipe.history.show`:
read-only open, query, render the table), timed in-process, median of `runs` runs; process
start-up is left out because it does not depend on the spool. Targets: well under 1 s each.

The worst case is quoted too: a filter no index serves and nothing matches (a reason that does
not occur) walks the whole table.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from bench.common import WORK
from bench.rss import prefill
from eventpipe.history import Filters, show
from eventpipe.spool import Spool

QUERIES = ("for_pod", "namespace_since_1h", "reason_backoff", "latest_500", "for_missing",
           "unindexed_miss")


async def _upgrade(path: Path) -> None:
    # Spool.open creates any index the pre-fill (made by an older schema) lacks.
    spool = await Spool.open(path)
    await spool.close()


def _pick(path: Path) -> tuple[str, str]:
    """A Pod with many stored events and the busiest namespace of the last hour."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        head = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        pod = conn.execute("SELECT name FROM events WHERE seq > ? AND kind = 'Pod' LIMIT 1",
                           (head // 2,)).fetchone()[0]
        namespace = conn.execute(
            "SELECT namespace FROM events WHERE seq > ? GROUP BY namespace "
            "ORDER BY count(*) DESC LIMIT 1", (head - 40_000,)).fetchone()[0]
    return str(pod), str(namespace)


def _filters(pod: str, namespace: str, now: float) -> dict[str, Filters]:
    return {
        "for_pod": Filters(kind="Pod", name=pod),
        "namespace_since_1h": Filters(namespace=namespace, since=now - 3600),
        "reason_backoff": Filters(reason="BackOff"),
        "latest_500": Filters(),
        "for_missing": Filters(kind="Pod", name="no-such-pod"),
        "unindexed_miss": Filters(reason="NoSuchReason"),
    }


async def _time(path: Path, filters: Filters) -> tuple[float, int]:
    started = time.perf_counter()
    shown = await show(path, filters, echo=lambda text: None)
    return time.perf_counter() - started, shown


def measure(spool_events: int, runs: int, path: Path | None = None) -> dict[str, object]:
    """Median seconds per query over `runs` runs (after one warm-up run each)."""
    path = path or WORK / f"prefilled-{spool_events}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    prefill_s = prefill(path, spool_events)
    asyncio.run(_upgrade(path))
    pod, namespace = _pick(path)
    chosen = _filters(pod, namespace, time.time())
    median: dict[str, float] = {}
    rows: dict[str, int] = {}
    for name in QUERIES:
        asyncio.run(_time(path, chosen[name]))  # warm the OS page cache, as a live spool is
        timings = []
        for _ in range(runs):
            seconds, rows[name] = asyncio.run(_time(path, chosen[name]))
            timings.append(seconds)
        median[f"{name}_s"] = statistics.median(timings)
    return {"median": median, "rows": rows, "spool_events": spool_events, "pod": pod,
            "namespace": namespace, "prefill_seconds": prefill_s}


def main(argv: list[str]) -> None:
    """`python -m bench.history [SPOOL]`: time the queries alone (SPOOL pre-filled if absent)."""
    result = measure(1_000_000, 5, Path(argv[0]) if argv else None)
    median = result["median"]
    assert isinstance(median, dict)
    for key, value in median.items():
        print(f"{key:<26} {value * 1000:8.1f} ms")
    print("rows shown:", result["rows"])


if __name__ == "__main__":
    main(sys.argv[1:])
