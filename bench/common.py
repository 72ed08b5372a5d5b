"""Processes and probes every measurement shares: the fake API server, `eventpipe run`, the
output file and the spool, each observed from outside the process under test.

Both servers run as child processes so eventpipe gets a core of its own the way it would in a
pod, and the bench's own polling never shares eventpipe's event loop. Every process started
here is stopped by its PID (SIGTERM, then SIGKILL after a grace period) when its context
manager exits, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
WORK = OUT / "work"


def free_port() -> int:
    """A port nothing listens on right now (the tiny reuse race is acceptable for a bench)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """SIGTERM the process we started, SIGKILL it if it has not exited within `grace`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class FakeApi:
    """`python -m tests.fakeapi` as a child; its stdout lines (`burst-start T`, ...) are queued."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            self._lines.put(line.strip())

    def wait_mark(self, name: str, within: float) -> float:
        """Wait for the server to print `<name> <epoch>`; returns the epoch."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"fake API server printed no {name!r} within {within}s")
            try:
                line = self._lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            key, _, value = line.partition(" ")
            if key == name:
                return float(value)


@contextlib.contextmanager
def fake_api(kubeconfig: Path, *args: str) -> Iterator[FakeApi]:
    """Start the fake API server writing `kubeconfig`; stopped on exit."""
    cmd = [sys.executable, "-m", "tests.fakeapi", "--port", str(free_port()),
           "--kubeconfig", str(kubeconfig), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed once listening (after any --burst)
        if not url.startswith("http"):
            raise RuntimeError(f"fake API server did not start (exit {proc.poll()})")
        yield FakeApi(proc, url)
    finally:
        _stop(proc, grace=10.0)


def write_config(folder: Path, *, kubeconfig: Path, spool: Path, output: Path,
                 extra: dict[str, Any] | None = None) -> Path:
    """An eventpipe config: one file receiver, quiet logs, a free metrics port (+ `extra`)."""
    config = {
        "logLevel": "error",
        "kubeconfig": str(kubeconfig),
        "spool": {"path": str(spool)},
        "http": {"address": "127.0.0.1", "port": free_port()},
        "route": {"routes": [{"match": [{"receiver": "dump"}]}]},
        "receivers": [{"name": "dump", "file": {"path": str(output)}}],
        "shutdownTimeout": "10s",
        **(extra or {}),
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def eventpipe(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`eventpipe run --config` as a child (its own PID, so /proc/PID is eventpipe itself)."""
    with log.open("ab") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "eventpipe", "run", "--config", str(config)],
                                cwd=REPO, stdout=handle, stderr=handle,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
    finally:
        _stop(proc)


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def vm_hwm_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    return _status_mib(pid, "VmHWM")


def vm_rss_mib(pid: int) -> float:
    """Resident set size right now (VmRSS) of a live process, in MiB."""
    return _status_mib(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LineTail:
    """Follows a growing JSON-lines file from outside; `poll()` returns the new whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: IO[bytes] | None = None
        self._pending = b""

    def poll(self) -> list[bytes]:
        """New complete lines since the last call (a half-written last line waits)."""
        if self._handle is None:
            if not self.path.exists():
                return []
            self._handle = self.path.open("rb")
        data = self._handle.read()
        if not data:
            return []
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        self.count += len(lines)
        return lines

    def close(self) -> None:
        """Close the file handle."""
        if self._handle is not None:
            self._handle.close()


class SpoolProbe:
    """Reads the spool's newest seq through a read-only connection (WAL lets it run beside
    eventpipe's writer without blocking it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def head(self) -> int:
        """max(seq), 0 before the spool exists."""
        if self._conn is None:
            if not self.path.exists():
                return 0
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            row = self._conn.execute("SELECT max(seq) FROM events").fetchone()
        except sqlite3.OperationalError:  # schema not created yet
            return 0
        return int(row[0] or 0)

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()


def wait_until(check: Callable[[], bool], *, within: float, what: str,
               alive: subprocess.Popen[Any] | None = None, every: float = 0.01) -> float:
    """Poll `check` until true; returns the wall-clock time it first held."""
    deadline = time.monotonic() + within
    while not check():
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"eventpipe exited ({alive.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within}s waiting for {what}")
        time.sleep(every)
    return time.time()


def wait_burst(probe: SpoolProbe, tail: LineTail | None, events: int, *, base: int,
               within: float, alive: subprocess.Popen[Any]) -> dict[str, float]:
    """Wait until `events` rows past `base` are in the spool and `events` lines in the file
    (no file when `tail` is None); the wall-clock time each was first seen
    ({"spool": t, "file": t}) and eventpipe's CPU seconds used by then
    ({"spool_cpu": s, "file_cpu": s})."""
    done: dict[str, float] = {}
    wanted = 1 if tail is None else 2

    def both_done() -> bool:
        now = time.time()
        if "spool" not in done and probe.head() - base >= events:
            done["spool"], done["spool_cpu"] = now, cpu_seconds(alive.pid)
        if "file" not in done and tail is not None:
            tail.poll()
            if tail.count >= events:
                done["file"], done["file_cpu"] = now, cpu_seconds(alive.pid)
        return ("spool" in done) + ("file" in done) == wanted

    wait_until(both_done, within=within, what=f"{events} events spooled and written",
               alive=alive, every=0.02)
    return done
