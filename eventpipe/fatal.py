"""What stops `eventpipe run` for good, each as one line naming the problem and an exit code
(docs/exit-codes.md): the API connection, the spool and the HTTP port at start; the spool file
going away, a receiver that cannot start or the Lease lost while running (`until_fatal`).

Each start-up step here raises `FatalError(EXIT_CONFIG)` instead of the library's exception:
the operator gets "cannot open the spool /data/spool.db: directory /data does not exist ..."
instead of a 50-line traceback ending in "unable to open database file".
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.config import ConfigException

from eventpipe.config import Config
from eventpipe.core.tasks import (
    EXIT_CONFIG,
    EXIT_LEADERSHIP_LOST,
    EXIT_SPOOL_LOST,
    FatalError,
    PipelineTasks,
    cancel_all,
    first_fatal,
)
from eventpipe.kube.client import connect, kubeconfig_path
from eventpipe.metrics import Metrics
from eventpipe.server.http import HttpServer
from eventpipe.spool import Spool, SpoolError
from eventpipe.spool.errors import SpoolVersionError
from eventpipe.spool.from_config import open_spool

if TYPE_CHECKING:
    from eventpipe.leader.elector import LeaderElector

EXIT_GRACE = 5.0
"""Seconds the interpreter gets to exit once the pipeline has stopped (see `exit_backstop`)."""
SPOOL_CHECK_INTERVAL = 1.0
"""Seconds between two checks that the spool path is still the file this process writes."""


async def connect_api(kubeconfig: str | None, *, read_bufsize: int | None = None
                      ) -> client.ApiClient:
    """`connect`, with a missing or unreadable kubeconfig as a FatalError naming it."""
    try:
        return await connect(kubeconfig, read_bufsize=read_bufsize)
    except (ConfigException, yaml.YAMLError, OSError, ValueError) as exc:
        raise FatalError(_kubeconfig_problem(kubeconfig_path(kubeconfig), exc),
                         exit_code=EXIT_CONFIG) from exc


def _kubeconfig_problem(path: str, exc: BaseException) -> str:
    where = "set `kubeconfig` in the config, --kubeconfig or $KUBECONFIG"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not path:
        return f"no kubeconfig and not in a cluster ({detail}): {where}"
    if not os.path.exists(path):
        return f"kubeconfig {path} does not exist: {where}"
    return (f"cannot load kubeconfig {path}: {detail}; fix the file or point `kubeconfig`, "
            "--kubeconfig or $KUBECONFIG at a working one")


async def open_spool_checked(config: Config, metrics: Metrics) -> Spool:
    """`open_spool`, with every reason it cannot open as a FatalError naming the path."""
    path = Path(config.spool.path)
    # Checked before SQLite tries: a failed aiosqlite connect leaves its worker thread to
    # finish on its own, which races the end of the event loop (a stray traceback at exit).
    if problem := _spool_path_problem(path):
        raise FatalError(f"cannot open the spool {path}: {problem}", exit_code=EXIT_CONFIG)
    try:
        return await open_spool(config, metrics)
    except (sqlite3.Error, SpoolError, OSError) as exc:
        raise FatalError(f"cannot open the spool {path}: {_spool_hint(path, exc)}",
                         exit_code=EXIT_CONFIG) from exc


def _spool_path_problem(path: Path) -> str:
    if path.is_dir():
        return "it is a directory; set spool.path to a file name inside it"
    if not path.parent.is_dir():
        return f"directory {path.parent} does not exist; create it or change spool.path"
    return ""


def _spool_hint(path: Path, exc: BaseException) -> str:
    if isinstance(exc, SpoolVersionError):
        return (f"{exc}: the file was written by a newer eventpipe; run that version, or move "
                "the file away (a new spool starts empty and relists) or change spool.path")
    code = getattr(exc, "sqlite_errorname", "")
    if code in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return f"{exc}; move the file away (a new spool starts empty) or change spool.path"
    if code in ("SQLITE_CANTOPEN", "SQLITE_READONLY"):
        return f"{exc}; check that {path.parent} is writable by this user"
    return str(exc) or type(exc).__name__


async def start_http(server: HttpServer, address: str, port: int) -> None:
    """Bind the HTTP port; a port in use or an address not on this host is a FatalError."""
    try:
        await server.start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        todo = ("another program (or eventpipe) listens there: stop it or set another http.port"
                if exc.errno == errno.EADDRINUSE else
                "set http.address to an address of this host (0.0.0.0 for all)")
        raise FatalError(f"cannot listen on {address}:{port} (http.address, http.port): "
                         f"{reason}; {todo}", exit_code=EXIT_CONFIG) from exc


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of `path`, or None when nothing is there."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


async def watch_spool_file(path: str | Path, opened: tuple[int, int] | None, *,
                           every: float = SPOOL_CHECK_INTERVAL) -> None:
    """Raise FatalError(EXIT_SPOOL_LOST) once `path` is no longer the file opened at start.

    SQLite keeps writing to a file that was deleted (or replaced by another) through the
    descriptor it holds, and reports no error: every event committed from then on would be
    gone at the next start. Exiting lets the restart open the file that is there now (or a new
    one, which relists).
    """
    while True:
        await asyncio.sleep(every)
        now = file_identity(path)
        if now != opened:
            what = "deleted" if now is None else "replaced by another file"
            raise FatalError(f"the spool {path} was {what} while running; exiting so the "
                             "restart opens it anew", exit_code=EXIT_SPOOL_LOST)


def exit_backstop(code: int, *, grace: float = EXIT_GRACE) -> threading.Timer:
    """Once the pipeline has stopped, end the process with `code` after `grace` seconds even
    if a thread would keep the interpreter alive (a call stuck in SQLite or on a hung disk):
    a supervisor must see the exit, not a process that only looks alive."""
    def force() -> None:
        logging.getLogger("eventpipe.app").error(
            "still running %gs after the pipeline stopped (a thread did not end); exiting %d",
            grace, code)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(code)

    timer = threading.Timer(grace, force)
    timer.daemon = True
    timer.start()
    return timer


async def until_fatal(tasks: PipelineTasks, elector: LeaderElector | None) -> FatalError:
    """What ends a run before SIGTERM: a task's FatalError (a receiver that cannot start, the
    spool file gone), or, with leader election, the Lease lost."""
    checks = [asyncio.create_task(first_fatal([
        tasks.writer, *tasks.watchers, *tasks.workers, tasks.upkeep, tasks.spool_check]))]
    if elector is not None:
        checks.append(asyncio.create_task(_hold_lease(elector, tasks)))
    try:
        done, _ = await asyncio.wait(checks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_all([c for c in checks if not c.done()])
    return done.pop().result()


async def _hold_lease(elector: LeaderElector, tasks: PipelineTasks) -> FatalError:
    """Renew the Lease while leading; once it is lost, stop sending at once (a batch in flight
    repeats later): a standby may take over after leaseDuration."""
    reason = await elector.hold()
    for task in (*tasks.watchers, *tasks.workers):
        task.cancel()
    return FatalError(f"leadership lost: {reason}; stopped watching and sending, exiting 1 to "
                      "restart as a standby", exit_code=EXIT_LEADERSHIP_LOST)
