"""Measurements 5 and 6: what eventpipe costs before any traffic, and a relist into an empty
spool.

`idle`: eventpipe on an empty spool against the fake API server with no Events; once /readyz
answers 200 (watching, spool writable) the bench waits `IDLE_SETTLE_S` and reads VmRSS and
VmHWM. This is the floor every other figure stands on: the interpreter, the imported
libraries, the parsed config, two SQLite connections, the HTTP server.

`relist`: the fake API server holds `events` Events before eventpipe starts (`--burst`), the
spool is empty, so the first LIST pages through all of them. Timed from the launch of the
process until every Event is in the spool and in the file, both read from outside; VmHWM at
the end.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.common import (
    WORK,
    LineTail,
    SpoolProbe,
    eventpipe,
    fake_api,
    vm_hwm_mib,
    wait_until,
    write_config,
)

IDLE_SETTLE_S = 3.0
RELIST_EVENTS = 150_000


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _vm_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def idle_once(folder: Path) -> dict[str, float]:
    """Start on an empty spool with nothing to watch; RSS once ready and settled."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig = folder / "kubeconfig"
    with fake_api(kubeconfig, "--start-rv", "1000"):
        config = write_config(folder, kubeconfig=kubeconfig, spool=folder / "spool.db",
                              output=folder / "out.jsonl")
        port = int(yaml.safe_load(config.read_text())["http"]["port"])
        launched = time.time()
        with eventpipe(config, folder / "eventpipe.log") as proc:
            ready = wait_until(lambda: _ready(port), within=60, alive=proc, every=0.02,
                               what="/readyz 200")
            time.sleep(IDLE_SETTLE_S)  # the figure is RSS after start, not during it
            return {"ready_seconds": ready - launched, "idle_rss_mib": _vm_rss_mib(proc.pid),
                    "peak_rss_mib": vm_hwm_mib(proc.pid)}


def relist_once(events: int, folder: Path) -> dict[str, float]:
    """`events` already in the cluster, an empty spool: time until all are stored and sent."""
    folder.mkdir(parents=True, exist_ok=True)
    kubeconfig, spool, output = folder / "kubeconfig", folder / "spool.db", folder / "out.jsonl"
    probe, tail = SpoolProbe(spool), LineTail(output)
    with fake_api(kubeconfig, "--start-rv", "1000", "--burst", str(events)):
        config = write_config(folder, kubeconfig=kubeconfig, spool=spool, output=output)
        launched = time.time()
        with eventpipe(config, folder / "eventpipe.log") as proc:
            try:
                done: dict[str, float] = {}

                def both_done() -> bool:
                    now = time.time()
                    if "spool" not in done and probe.head() >= events:
                        done["spool"] = now
                    if "file" not in done:
                        tail.poll()
                        if tail.count >= events:
                            done["file"] = now
                    return len(done) == 2

                wait_until(both_done, within=300, alive=proc, every=0.02,
                           what=f"{events} listed events stored and written")
                rss = vm_hwm_mib(proc.pid)
            finally:
                probe.close()
                tail.close()
    return {"stored_seconds": done["spool"] - launched,
            "delivered_seconds": done["file"] - launched, "peak_rss_mib": rss}


def measure_idle(runs: int) -> list[dict[str, float]]:
    """`runs` idle starts, each on a fresh spool."""
    return _each(runs, "idle", idle_once)


def measure_relist(events: int, runs: int) -> list[dict[str, float]]:
    """`runs` relists of `events`, each with a fresh server, spool and eventpipe."""
    return _each(runs, "relist", lambda folder: relist_once(events, folder))


def _each(runs: int, name: str, once: Callable[[Path], dict[str, float]]
          ) -> list[dict[str, float]]:
    results = []
    for i in range(runs):
        folder = WORK / f"{name}-{i}"
        try:
            results.append(once(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results
