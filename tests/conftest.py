"""Shared fixtures, and the net under a run that would not end.

A thread that is not a daemon keeps the interpreter alive after pytest printed its summary (an
aiosqlite connection never closed is one): the run then hangs until CI's time limit instead of
reporting. At the end of the session every such thread still alive after a short grace is
listed with the test during which it appeared, the session fails, and the process exits.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer

THREAD_GRACE = 2.0
"""Seconds a thread still running at the end of the session has to finish (one closing)."""

_started_during: weakref.WeakKeyDictionary[threading.Thread, str] = weakref.WeakKeyDictionary()
_exit_status = pytest.StashKey[int]()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApiServer]:
    """A running fake API server with a kubeconfig at tmp_path/kubeconfig."""
    async with FakeApiServer() as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        yield server


@pytest.fixture(autouse=True)
def _note_new_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Remember which test each thread still running after it appeared during."""
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        _started_during.setdefault(thread, request.node.nodeid)


def lingering_threads(grace: float = THREAD_GRACE) -> list[threading.Thread]:
    """Non-daemon threads other than this one still alive after waiting up to `grace` s."""
    current = threading.current_thread()
    waiting = [t for t in threading.enumerate() if t is not current and not t.daemon]
    per_thread = grace / max(1, len(waiting))
    for thread in waiting:
        thread.join(per_thread)
    return [t for t in waiting if t.is_alive()]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session, naming them, when threads would keep the interpreter alive."""
    leaked = lingering_threads()
    if not leaked:
        return
    lines = [f"  {t.name}: appeared during {_started_during.get(t, 'collection or setup')}"
             for t in leaked]
    sys.stderr.write(f"\nFAILED: {len(leaked)} non-daemon thread(s) still running after the "
                     "session would keep this process from exiting (close what the test "
                     "opened: a fixture, `async with` or try/finally):\n"
                     + "\n".join(lines) + "\n")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    session.config.stash[_exit_status] = int(session.exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After everything else pytest does, exit at once if threads would hang the exit."""
    status = config.stash.get(_exit_status, None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


class OpenSpool(Protocol):
    """`await open_spool(name, **options)`: `Spool.open(tmp_path / name, **options)`."""

    async def __call__(self, name: str = "spool.db", /, **options: Any) -> Spool: ...


@pytest.fixture
async def open_spool(tmp_path: Path) -> AsyncIterator[OpenSpool]:
    """Opens spools under tmp_path and closes every one after the test, passed or failed, so
    no aiosqlite thread outlives it (a live one keeps the interpreter from exiting)."""
    opened: list[Spool] = []

    async def open_one(name: str = "spool.db", /, **options: Any) -> Spool:
        spool = await Spool.open(tmp_path / name, **options)
        opened.append(spool)
        return spool

    yield open_one
    for spool in reversed(opened):
        await spool.close()


@pytest.fixture
async def cleanup() -> AsyncIterator[contextlib.AsyncExitStack]:
    """An exit stack unwound after the test, passed or failed: register `close`/`stop` of what
    a test opens with `cleanup.push_async_callback(...)` right after opening it."""
    async with contextlib.AsyncExitStack() as stack:
        yield stack
