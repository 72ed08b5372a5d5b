"""Measurement 2, ingest: how fast a burst on an established WATCH reaches the spool and the file,
against the minimal durable reference (`bench/reference.py`) measured the same way in the same
run.

The fake API server (its own process) prepares N corpus-derived Events, waits until the
watcher's stream is open, prints `burst-start T` and adds them as fast as it can. The bench then
polls, from outside, the store's max(seq) (read-only) and the output file's line count until
both hold all N. Rates are N / (time all N were there - T); timing starts at the first add, so
the initial LIST (empty) and process start-up are not in the figure. VmHWM is read just before
the process is stopped, and its CPU time from the burst's start to then, per event, is a figure
that load from other processes moves far less than the rates.

Each run is a round of three bursts, each on a fresh server: `eventpipe run` (file receiver,
default config), the reference storing only (its `ref_spool_*` figures, the bar of ingest) and
the reference storing and writing the file (`ref_file_*`, the bar of end to end). Rounds
alternate the order (eventpipe first, then last), so the machine's drift hits both sides alike;
`ingest_ratio` and `e2e_ratio` are eventpipe's rate over the reference's of the same round.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    WORK,
    LineTail,
    SpoolProbe,
    _stop,
    cpu_seconds,
    eventpipe,
    fake_api,
    vm_hwm_mib,
    wait_burst,
    write_config,
)

START_RV = 1_000

Launch = Callable[[Path, Path, Path, Path | None], contextlib.AbstractContextManager[
    subprocess.Popen[Any]]]
"""(folder, kubeconfig, store, output file or None) → the process under test, running."""


@contextlib.contextmanager
def launch_eventpipe(folder: Path, kubeconfig: Path, spool: Path, output: Path | None
                     ) -> Iterator[subprocess.Popen[Any]]:
    """`eventpipe run` with one file receiver writing `output`."""
    assert output is not None
    config = write_config(folder, kubeconfig=kubeconfig, spool=spool, output=output)
    with eventpipe(config, folder / "eventpipe.log") as proc:
        yield proc


@contextlib.contextmanager
def launch_reference(folder: Path, kubeconfig: Path, store: Path, output: Path | None
                     ) -> Iterator[subprocess.Popen[Any]]:
    """`python -m bench.reference`, writing the file only when `output` is given."""
    cmd = [sys.executable, "-m", "bench.reference", "--kubeconfig", str(kubeconfig),
           "--db", str(store)]
    if output is not None:
        cmd += ["--output", str(output)]
    with (folder / "reference.log").open("ab") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        _stop(proc)


def burst(events: int, folder: Path, launch: Launch, *, to_file: bool = True,
          within: float = 300.0) -> dict[str, float]:
    """One burst of `events` into a fresh process started by `launch`; rates, timings, peak
    RSS and CPU per event."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig, spool = folder / "kubeconfig", folder / "spool.db"
    output = folder / "out.jsonl" if to_file else None
    probe = SpoolProbe(spool)
    tail = LineTail(output) if output is not None else None
    server = fake_api(kubeconfig, "--start-rv", str(START_RV), "--watch-burst", str(events))
    with server as api, launch(folder, kubeconfig, spool, output) as proc:
        try:
            t0 = api.wait_mark("burst-start", within=60)
            cpu0 = cpu_seconds(proc.pid)
            base = probe.head()  # the LIST was empty; anything here predates the burst
            done = wait_burst(probe, tail, events, base=base, within=within, alive=proc)
            burst_end = api.wait_mark("burst-end", within=10)
            rss = vm_hwm_mib(proc.pid)
            cpu = cpu_seconds(proc.pid) - cpu0
        finally:
            probe.close()
            if tail is not None:
                tail.close()
    result = {
        "spool_events_per_s": events / (done["spool"] - t0),
        "spool_seconds": done["spool"] - t0,
        "server_add_seconds": burst_end - t0,
        "peak_rss_mib": rss,
        "cpu_us_per_event": cpu / events * 1e6,
    }
    if "file" in done:
        result["file_events_per_s"] = events / (done["file"] - t0)
        result["file_seconds"] = done["file"] - t0
    return result


def run_once(events: int, folder: Path) -> dict[str, float]:
    """eventpipe alone: one burst, file receiver (the figures without the reference)."""
    return burst(events, folder, launch_eventpipe)


def _round(events: int, folder: Path, eventpipe_first: bool) -> dict[str, float]:
    """eventpipe, the storing reference and the end-to-end reference, one burst each."""
    def ours() -> dict[str, float]:
        return burst(events, folder / "eventpipe", launch_eventpipe)

    def theirs() -> tuple[dict[str, float], dict[str, float]]:
        return (burst(events, folder / "ref-spool", launch_reference, to_file=False),
                burst(events, folder / "ref-file", launch_reference))

    if eventpipe_first:
        result = ours()
        ref_spool, ref_file = theirs()
    else:
        ref_spool, ref_file = theirs()
        result = ours()
    result.update({
        "ref_spool_events_per_s": ref_spool["spool_events_per_s"],
        "ref_spool_peak_rss_mib": ref_spool["peak_rss_mib"],
        "ref_spool_cpu_us_per_event": ref_spool["cpu_us_per_event"],
        "ref_file_events_per_s": ref_file["file_events_per_s"],
        "ref_file_peak_rss_mib": ref_file["peak_rss_mib"],
        "ref_file_cpu_us_per_event": ref_file["cpu_us_per_event"],
        "ingest_ratio": result["spool_events_per_s"] / ref_spool["spool_events_per_s"],
        "e2e_ratio": result["file_events_per_s"] / ref_file["file_events_per_s"],
    })
    return result


def measure(events: int, runs: int) -> list[dict[str, float]]:
    """`runs` rounds, each with fresh servers, stores and processes."""
    results = []
    for i in range(runs):
        folder = WORK / f"ingest-{i}"
        try:
            results.append(_round(events, folder, eventpipe_first=i % 2 == 0))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results
