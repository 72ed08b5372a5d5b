"""The demo's live summary: what the cluster wrote, what the spool holds, what each receiver got.

Read from the pipeline's own Prometheus registry (the numbers /metrics shows) and the spool
file's size on disk, once a second. On a terminal the block is redrawn in place; otherwise
(piped, CI, tests) each refresh is one plain line, so the output stays greppable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from eventpipe.demo.cluster import SimulatedCluster
from eventpipe.demo.scenario import Scenario
from eventpipe.metrics import Metrics


class Summary:
    """Renders one refresh at a time; `show()` prints it to `out`."""

    def __init__(self, *, metrics: Metrics, receivers: list[str], spool_path: Path,
                 cluster: SimulatedCluster, scenario: Scenario, out: TextIO, tty: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._receivers = receivers
        self._spool_path = spool_path
        self._cluster = cluster
        self._scenario = scenario
        self._out = out
        self._tty = tty
        self._clock = clock
        self._started = clock()
        self._last = (self._started, cluster.written, 0.0)  # (time, cluster written, spooled)
        self._drawn = 0

    def _value(self, name: str, receiver: str | None = None) -> float:
        labels = {"receiver": receiver} if receiver is not None else None
        return self._metrics.registry.get_sample_value(name, labels) or 0.0

    def spool_bytes(self) -> int:
        """Size of the spool on disk, write-ahead log included."""
        total = 0
        for suffix in ("", "-wal"):
            path = self._spool_path.with_name(self._spool_path.name + suffix)
            if path.exists():
                total += path.stat().st_size
        return total

    def lines(self) -> list[str]:
        """The current numbers: one line in plain mode, a block on a terminal."""
        now = self._clock()
        written = self._cluster.written
        spooled = self._value("eventpipe_spool_events_total")
        then, written_then, spooled_then = self._last
        dt = max(now - then, 1e-6)
        self._last = (now, written, spooled)
        cluster_rate = (written - written_then) / dt
        spool_rate = (spooled - spooled_then) / dt
        stats = self._scenario.stats
        size = _size(self.spool_bytes())
        per_receiver = [(name, int(self._value("eventpipe_sink_sent_total", name)),
                         int(self._value("eventpipe_sink_lag_events", name)),
                         int(self._value("eventpipe_sink_retries_total", name)),
                         int(self._value("eventpipe_sink_dead_letters_total", name)))
                        for name in self._receivers]
        elapsed = now - self._started
        if not self._tty:
            receivers = " | ".join(f"{name}: delivered {sent} lag {lag}"
                                   + (f" retries {retries}" if retries else "")
                                   + (f" dead {dead}" if dead else "")
                                   for name, sent, lag, retries, dead in per_receiver)
            return [f"demo {elapsed:5.1f}s | cluster wrote {written} ({cluster_rate:.1f}/s) | "
                    f"spooled {int(spooled)} ({spool_rate:.1f}/s), spool {size} on disk | "
                    f"{receivers}"]
        width = max([len("receiver"), *(len(r) for r in self._receivers)])
        block = [
            f"eventpipe demo  {elapsed:6.1f}s   (Ctrl-C to stop)",
            f"cluster   wrote {written:>8}  {cluster_rate:6.1f}/s   new {stats['new']}, "
            f"count bumps {stats['bump']}, node NotReady/Ready "
            f"{stats['node_not_ready']}/{stats['node_ready']}",
            f"spool     stored {int(spooled):>7}  {spool_rate:6.1f}/s   {size} on disk",
            f"{'receiver':<{width}}  {'delivered':>9}  {'lag':>6}  {'retries':>7}  {'dead':>5}",
        ]
        block += [f"{name:<{width}}  {sent:>9}  {lag:>6}  {retries:>7}  {dead:>5}"
                  for name, sent, lag, retries, dead in per_receiver]
        return block

    def show(self) -> None:
        """Print the current summary (redrawing the previous block on a terminal)."""
        lines = self.lines()
        if self._tty and self._drawn:
            # Cursor up to the first line of the previous block, then clear to the end.
            self._out.write(f"\x1b[{self._drawn}F\x1b[J")
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()
        self._drawn = len(lines) if self._tty else 0


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
