"""Small asyncio helpers for long-lived tasks: race against a stop event, restart on a bug,
cancel and wait, time left to a deadline (used by `eventpipe run`, eventpipe.app)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Logged under the app's name: these tasks are the running pipeline's.
log = logging.getLogger("eventpipe.app")


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
    """Run a long-lived task; a bug that escapes it is logged and the task restarted."""
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task crashed; restarting in 1 s", extra={"task": name})
            await asyncio.sleep(1.0)


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until each has finished (whatever it raised)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def time_left(deadline: float) -> float:
    """Seconds until the monotonic `deadline`, at least 0.1 (a last chance, never zero)."""
    return max(0.1, deadline - time.monotonic())
