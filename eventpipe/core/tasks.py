"""Small asyncio helpers for the long-lived tasks of `eventpipe run` (eventpipe.app), and the
error that ends a run for good (`FatalError`, with the exit codes of docs/exit-codes.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Logged under the app's name: these tasks are the running pipeline's.
log = logging.getLogger("eventpipe.app")

EXIT_STOPPED = 0
"""Stopped by SIGTERM/SIGINT (or a standby stopped)."""
EXIT_LEADERSHIP_LOST = 1
"""The Lease was lost while leading (also Python's code for an uncaught exception)."""
EXIT_CONFIG = 2
"""The config, or what it names, is wrong: nothing a restart with the same config can fix."""
EXIT_SPOOL_LOST = 3
"""The spool file was deleted or replaced while running: what is written now would be lost."""


class FatalError(Exception):
    """A failure no restart of the task can fix: the run shuts down and exits `exit_code`.

    `str(error)` is the one line the operator reads: what failed, where, what to do.
    """

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class PipelineTasks:
    """The tasks a running pipeline owns (see eventpipe.app for the shutdown order)."""

    writer: asyncio.Task[None]
    watchers: list[asyncio.Task[None]]
    workers: list[asyncio.Task[None]]
    upkeep: asyncio.Task[None]
    lag: asyncio.Task[None]
    trim: asyncio.Task[None]
    spool_check: asyncio.Task[None]


async def first_of(work: Awaitable[Any], stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first; True when `work` finished."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_all([t for t in (task, stopped) if not t.done()])
    if task.done() and not task.cancelled():
        task.result()
        return True
    return False


async def supervise(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Run a long-lived task; a bug that escapes it is logged and the task restarted. A
    `FatalError` is not restarted: it ends the task (see `first_fatal`)."""
    while True:
        try:
            await factory()
            return
        except (asyncio.CancelledError, FatalError):
            raise
        except Exception:
            log.exception("task crashed; restarting in 1 s", extra={"task": name})
            await asyncio.sleep(1.0)


async def first_fatal(tasks: Iterable[asyncio.Task[Any]]) -> FatalError:
    """The `FatalError` the first of `tasks` to fail with one raised; waits forever if none
    does (tasks that end otherwise are left to their owner)."""
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if isinstance(error, FatalError):
                return error
    await asyncio.Future()
    raise AssertionError("unreachable")


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until each has finished (whatever it raised)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def time_left(deadline: float) -> float:
    """Seconds until the monotonic `deadline`, at least 0.1 (a last chance, never zero)."""
    return max(0.1, deadline - time.monotonic())
