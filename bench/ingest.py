"""Measurement 2, ingest: how fast a burst on an established WATCH reaches the spool and the file.

The fake API server (its own process) prepares N corpus-derived Events, waits until eventpipe's
watch stream is open, prints `burst-start T` and adds them as fast as it can. The bench then
polls, from outside, the spool's max(seq) (read-only) and the output file's line count until
both hold all N. Rates are N / (time all N were there - T); timing starts at the first add, so
the initial LIST (empty) and process start-up are not in the figure. VmHWM is read just before
eventpipe is stopped. eventpipe's CPU time from the burst's start to then, per event, is a figure
that load from other processes moves far less than the rates.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.common import (
    WORK,
    LineTail,
    SpoolProbe,
    cpu_seconds,
    eventpipe,
    fake_api,
    vm_hwm_mib,
    wait_until,
    write_config,
)

START_RV = 1_000


def run_once(events: int, folder: Path, *, within: float = 300.0) -> dict[str, float]:
    """One burst of `events` into a fresh eventpipe; returns rates, timings and peak RSS."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig, spool, output = folder / "kubeconfig", folder / "spool.db", folder / "out.jsonl"
    probe, tail = SpoolProbe(spool), LineTail(output)
    with fake_api(kubeconfig, "--start-rv", str(START_RV), "--watch-burst", str(events)) as api:
        config = write_config(folder, kubeconfig=kubeconfig, spool=spool, output=output)
        with eventpipe(config, folder / "eventpipe.log") as proc:
            try:
                t0 = api.wait_mark("burst-start", within=60)
                cpu0 = cpu_seconds(proc.pid)
                base = probe.head()  # the LIST was empty; anything here predates the burst
                done: dict[str, float] = {}

                def both_done() -> bool:
                    now = time.time()
                    if "spool" not in done and probe.head() - base >= events:
                        done["spool"] = now
                    if "file" not in done:
                        tail.poll()
                        if tail.count >= events:
                            done["file"] = now
                    return len(done) == 2

                wait_until(both_done, within=within, what=f"{events} events spooled and written",
                           alive=proc, every=0.02)
                burst_end = api.wait_mark("burst-end", within=10)
                rss = vm_hwm_mib(proc.pid)
                cpu = cpu_seconds(proc.pid) - cpu0
            finally:
                probe.close()
                tail.close()
    return {
        "spool_events_per_s": events / (done["spool"] - t0),
        "file_events_per_s": events / (done["file"] - t0),
        "spool_seconds": done["spool"] - t0,
        "file_seconds": done["file"] - t0,
        "server_add_seconds": burst_end - t0,
        "peak_rss_mib": rss,
        "cpu_us_per_event": cpu / events * 1e6,
    }


def measure(events: int, runs: int) -> list[dict[str, float]]:
    """`runs` runs, each with a fresh spool, server and eventpipe."""
    results = []
    for i in range(runs):
        folder = WORK / f"ingest-{i}"
        try:
            results.append(run_once(events, folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results
