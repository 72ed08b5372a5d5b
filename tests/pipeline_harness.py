"""Helpers for end-to-end tests: write a config, run eventpipe in-process or as a subprocess,
wait for conditions (with a deadline, never a blind sleep), read the file sink."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from eventpipe.app import Pipeline
from eventpipe.config import load_config

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "events"


def corpus_files() -> list[Path]:
    """The top-level corpus files of single Event objects (not the watch wrappers)."""
    return sorted(p for p in CORPUS.glob("*.jsonl") if not p.name.endswith(".watch.jsonl"))


def write_config(tmp: Path, *, kubeconfig: Path, extra: dict[str, Any] | None = None,
                 receivers: list[dict[str, Any]] | None = None,
                 route: dict[str, Any] | None = None) -> Path:
    """A config with a file receiver `dump` at tmp/events.jsonl unless told otherwise."""
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
    path = tmp / "config.yaml"
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


async def start_subprocess(config_path: Path, *, log: Path) -> asyncio.subprocess.Process:
    """`eventpipe run --config` as a child process (for SIGTERM / SIGKILL tests)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    handle = log.open("ab")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventpipe", "run", "--config", str(config_path),
        stdout=handle, stderr=handle, env=env, cwd=str(REPO))
