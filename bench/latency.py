"""Measurement 3, latency watch → file at a steady rate.

The fake API server adds `rate` Events/s (10 ms ticks) once eventpipe's watch is open, stamping
each with its add time in the annotation `eventpipe.bench/sent-at`, and stops after
rate × seconds Events. The bench tails the output file every few ms and, per line, takes
arrival (when the tail saw the line) minus the stamp. Both clocks are this machine's wall
clock; the tail interval (2 ms) bounds the error the bench itself adds.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from bench.common import WORK, LineTail, eventpipe, fake_api, vm_hwm_mib, write_config

STAMP = re.compile(rb'"eventpipe\.bench/sent-at":"([0-9.]+)"')
POLL_S = 0.002


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (0 < q <= 100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_once(rate: int, seconds: float, folder: Path) -> dict[str, float]:
    """One steady run; returns p50/p99/max latency in ms, the achieved rate and peak RSS."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig, spool, output = folder / "kubeconfig", folder / "spool.db", folder / "out.jsonl"
    total = int(rate * seconds)
    tail = LineTail(output)
    latencies: list[float] = []
    args = ("--start-rv", "1000", "--after-watch", "--stamp", "--rate", str(rate),
            "--rate-total", str(total))
    with fake_api(kubeconfig, *args) as api:
        config = write_config(folder, kubeconfig=kubeconfig, spool=spool, output=output)
        with eventpipe(config, folder / "eventpipe.log") as proc:
            try:
                deadline = time.monotonic() + seconds + 60
                first = last = 0.0
                while len(latencies) < total:
                    if proc.poll() is not None:
                        raise RuntimeError(f"eventpipe exited ({proc.returncode})")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {len(latencies)} of {total} lines arrived")
                    lines = tail.poll()
                    now = time.time()
                    for line in lines:
                        found = STAMP.search(line)
                        if found is None:
                            raise RuntimeError("an output line carries no send stamp")
                        sent = float(found.group(1))
                        first = first or sent
                        last = max(last, sent)
                        latencies.append(now - sent)
                    time.sleep(POLL_S)
                rss = vm_hwm_mib(proc.pid)
            finally:
                tail.close()
        api.wait_mark("rate-end", within=10)
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "events": float(len(latencies)),
        "sent_events_per_s": (len(latencies) - 1) / (last - first) if last > first else 0.0,
        "peak_rss_mib": rss,
    }


def measure(rate: int, seconds: float, runs: int) -> list[dict[str, float]]:
    """`runs` runs, each with a fresh spool, server and eventpipe."""
    results = []
    for i in range(runs):
        folder = WORK / f"latency-{i}"
        try:
            results.append(run_once(rate, seconds, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results
