"""Helpers for end-to-end tests: write a config, run eventpipe in-process or as a subprocess,
wait for conditions (with a deadline, never a blind sleep), read the file sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from eventpipe.app import Pipeline
from eventpipe.config import load_config
from tests.corpus_files import CORPUS as CORPUS
from tests.corpus_files import corpus_files as corpus_files

REPO = Path(__file__).resolve().parent.parent


def write_config(tmp: Path, *, kubeconfig: Path, extra: dict[str, Any] | None = None,
                 receivers: list[dict[str, Any]] | None = None,
                 route: dict[str, Any] | None = None, name: str = "config.yaml") -> Path:
    """A config with a file receiver `dump` at tmp/events.jsonl unless told otherwise;
    written to tmp/`name` (several configs may share one spool)."""
    config: dict[str, Any] = {
        "logLevel": "debug",
        "kubeconfig": str(kubeconfig),
        "spool": {"path": str(tmp / "spool.db")},
        "http": {"address": "127.0.0.1", "port": 0},
        "route": route or {"routes": [{"match": [{"receiver": "dump"}]}]},
        "receivers": receivers or [{"name": "dump", "file": {"path": str(tmp / "events.jsonl")}}],
        "shutdownTimeout": "10s",
    }
    config.update(extra or {})
    path = tmp / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of a file sink (empty if the file is not there yet)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def versions(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(uid, resourceVersion) of each line, in file order."""
    return [(e["metadata"]["uid"], e["metadata"]["resourceVersion"]) for e in lines]


async def wait_until(predicate: Callable[[], bool], *, within: float = 30.0,
                     what: str = "condition") -> None:
    """Poll `predicate` until true; fail the test naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(config_path: Path) -> AsyncIterator[Pipeline]:
    """Run the pipeline in this event loop; on exit stop it like SIGTERM and check exit 0."""
    pipeline = Pipeline(load_config(config_path), http_port=0)
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop))
    try:
        await wait_until(lambda: (bool(pipeline.watchers) and all(
            w.established.is_set() for w in pipeline.watchers)) or task.done(),
            within=20, what="watch established")
        if task.done():
            task.result()
        yield pipeline
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def start_subprocess(config_path: Path, *, log: Path,
                           argv: Sequence[str] | None = None,
                           env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`eventpipe run --config` as a child process (for SIGTERM / SIGKILL tests).

    `argv` replaces the arguments after `python -m eventpipe` (e.g. resmo's `-conf=F`).
    `env` replaces this process's environment. stdout and stderr are appended to `log`.
    """
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
    args = list(argv) if argv is not None else ["run", "--config", str(config_path)]
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventpipe", *args,
            stdout=handle, stderr=handle, env=env, cwd=str(REPO))


# ---- helpers for tests that drive the real `eventpipe` command ---------------------------

@dataclass
class CliResult:
    """What one `eventpipe ...` invocation did."""

    code: int
    stdout: str
    stderr: str


async def run_cli(*args: str, within: float = 60.0) -> CliResult:
    """Run `python -m eventpipe ARGS` to completion (the event loop stays free meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventpipe", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=str(REPO),
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"eventpipe {' '.join(args)} still running after {within}s"
                             ) from None
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


@contextlib.asynccontextmanager
async def child_processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """A list to put started children in; any still running at the end are killed."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)
                await proc.wait()


async def wait_for_exit(proc: asyncio.subprocess.Process, *, within: float) -> int:
    """The exit code; fail if the process has not exited within `within` seconds."""
    try:
        return await asyncio.wait_for(proc.wait(), within)
    except TimeoutError:
        raise AssertionError(f"process {proc.pid} did not exit within {within}s") from None


def log_records(log: Path) -> list[dict[str, Any]]:
    """The JSON log records a child wrote to `log` (other lines, e.g. tracebacks, skipped)."""
    if not log.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in log.read_bytes().splitlines():
        if line.startswith(b"{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(line))
    return out


def log_messages(log: Path) -> list[str]:
    """The `msg` of every JSON log record in `log`."""
    return [str(r.get("msg", "")) for r in log_records(log)]


async def wait_started(proc: asyncio.subprocess.Process, log: Path, *,
                       within: float = 30.0) -> int:
    """Wait for the child's "eventpipe started" log record; returns its HTTP port."""
    found: list[int] = []

    def started() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"eventpipe exited with {proc.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        for record in log_records(log):
            if record.get("msg") == "eventpipe started":
                found.append(int(record["http_port"]))
                return True
        return False

    await wait_until(started, within=within, what="eventpipe started")
    return found[0]


async def http_get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; (status, body)."""
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=10)) as resp:
        return resp.status, await resp.text()


async def wait_until_async(predicate: Callable[[], Awaitable[bool]], *, within: float = 30.0,
                           what: str = "condition") -> None:
    """`wait_until` for a predicate that has to await (an HTTP call, a spool query)."""
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metric_samples(text: str) -> Samples:
    """Parse a Prometheus exposition: {(sample name, labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample_values(samples: Samples, name: str, **labels: str) -> list[float]:
    """Values of every sample called `name` whose labels include `labels`."""
    want = set(labels.items())
    return [v for (n, lbls), v in samples.items() if n == name and want <= lbls]


async def scrape(port: int) -> Samples:
    """GET /metrics and parse it."""
    status, body = await http_get(port, "/metrics")
    assert status == 200, body
    return metric_samples(body)


class LineCounter:
    """Counts the lines of a growing file by reading only what was appended since last time,
    so a test can poll a 20k-line file every few milliseconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.lines = 0

    def count(self) -> int:
        """Complete lines in the file now."""
        if not self.path.exists():
            return self.lines
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        self.lines += data.count(b"\n", 0, complete)
        self._offset += complete
        return self.lines


def k8s_event(name: str, *, namespace: str = "default", reason: str = "BackOff",
              count: int = 1, uid: str | None = None, message: str | None = None,
              field_path: str | None = None) -> dict[str, Any]:
    """A core/v1 Event about Pod `name`, the way the kubelet writes one."""
    involved: dict[str, Any] = {"kind": "Pod", "name": name, "namespace": namespace}
    if field_path is not None:
        involved["fieldPath"] = field_path
    meta: dict[str, Any] = {"name": f"{name}.17a0", "namespace": namespace}
    if uid is not None:
        meta["uid"] = uid
    return {
        "kind": "Event", "apiVersion": "v1", "metadata": meta, "involvedObject": involved,
        "reason": reason, "type": "Warning", "message": message or f"{reason} on {name}",
        "count": count, "firstTimestamp": "2026-11-23T10:00:00Z",
        "lastTimestamp": "2026-11-23T10:00:00Z", "source": {"component": "kubelet"},
    }


def burst_events(new: int, bumps: int, *, prefix: str, seed: int = 7) -> list[dict[str, Any]]:
    """`new` distinct Events (unique uids) interleaved with `bumps` count increments of earlier
    ones, in write order: fed to `FakeApiServer.add_many` the bumps become MODIFIED versions."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    uids: list[str] = []
    out: list[dict[str, Any]] = []
    made = bumped = 0
    while made < new or bumped < bumps:
        if uids and bumped < bumps and (made >= new or rng.random() < bumps / (new + bumps)):
            uid = rng.choice(uids)
            counts[uid] += 1
            index = int(uid.rsplit("-", 1)[1])
            out.append(k8s_event(f"{prefix}-{index}", uid=uid, count=counts[uid]))
            bumped += 1
        else:
            uid = f"{prefix}-uid-{made}"
            uids.append(uid)
            counts[uid] = 1
            out.append(k8s_event(f"{prefix}-{made}", uid=uid))
            made += 1
    return out
