"""The real `eventpipe run` against the fake API server ends on every fatal path: a start-up
problem found after the spool opened (HTTP port in use), a receiver that cannot start, the
Lease taken or not renewable within renewDeadline, the spool file deleted or replaced. Each
exits with its code (docs/exit-codes.md), writes one error line naming the problem and no
traceback, and is gone within shutdownTimeout (plus a margin for the interpreter to exit)."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from eventpipe.core.tasks import EXIT_CONFIG, EXIT_LEADERSHIP_LOST, EXIT_SPOOL_LOST
from eventpipe.fatal import SPOOL_CHECK_INTERVAL
from eventpipe.spool.schema import SCHEMA_VERSION
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    REPO,
    k8s_event,
    log_records,
    read_lines,
    wait_for_exit,
    wait_started,
    wait_until,
    write_config,
)
from tests.volumes import tmpfs

SHUTDOWN = 4.0  # shutdownTimeout of every config here
MARGIN = 3.0  # interpreter teardown after the pipeline returned, on a loaded machine
LEASE = "eventpipe-fatal"
ELECTION = {"enabled": True, "leaderElectionID": LEASE, "namespace": "default",
            "identity": "me", "leaseDuration": "3s", "renewDeadline": "2s",
            "retryPeriod": "250ms"}
RENEW_DEADLINE = 2.0


@pytest.fixture
async def eventpipe(tmp_path: Path) -> AsyncIterator[Any]:
    """A function that starts `eventpipe run --config C` with stderr in tmp_path/stderr.log
    (stdout discarded: no receiver here writes to it); every child is killed at the end."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(config: Path, env: dict[str, str] | None = None
                    ) -> asyncio.subprocess.Process:
        with (tmp_path / "stderr.log").open("ab") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "eventpipe", "run", "--config", str(config),
                stdout=asyncio.subprocess.DEVNULL, stderr=stderr, cwd=str(REPO),
                env=env or {**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def config(tmp_path: Path, **extra: Any) -> Path:
    return write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                        extra={"logLevel": "info", "shutdownTimeout": f"{SHUTDOWN:g}s", **extra})


def the_error(log: Path, *fragments: str) -> dict[str, Any]:
    """The one error record of the run, which must name the problem by every fragment; the
    output holds nothing but log records (no traceback, no stray print)."""
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert all(line.startswith("{") for line in text.splitlines()), text[-3000:]
    errors = [r for r in log_records(log) if r.get("level") in ("error", "critical")]
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0]["msg"], (fragment, errors[0])
    return errors[0]


async def exits(proc: asyncio.subprocess.Process, *, within: float) -> tuple[int, float]:
    """(exit code, seconds from now until the process was gone), failing after `within`."""
    started = time.monotonic()
    code = await wait_for_exit(proc, within=within)
    return code, time.monotonic() - started


async def sending(eventpipe: Any, api: FakeApiServer, tmp_path: Path,
                  **extra: Any) -> asyncio.subprocess.Process:
    """`eventpipe run` started, leading if it elects, and one Event delivered to the file."""
    proc: asyncio.subprocess.Process = await eventpipe(config(tmp_path, **extra))
    await wait_started(proc, tmp_path / "stderr.log")
    if "leaderElection" in extra:
        await api.wait_for(lambda: api.leases.holder(LEASE) == "me", within=20)
    await api.wait_for_watchers(1, within=20)
    api.add(k8s_event("delivered"))
    await wait_until(lambda: len(read_lines(tmp_path / "events.jsonl")) == 1, what="one event")
    return proc


def seconds_since(record: dict[str, Any]) -> float:
    """Wall-clock seconds from a log record's `time` until now."""
    logged = datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
    return time.time() - logged.timestamp()


def lose_spool(tmp_path: Path, how: str) -> None:
    """Delete the spool's files (as `rm -rf` of its directory would), or replace the file
    with a copy (a backup restored over it)."""
    spool = tmp_path / "spool.db"
    if how == "deleted":
        for path in tmp_path.glob("spool.db*"):
            path.unlink()
    else:
        (tmp_path / "other.db").write_bytes(spool.read_bytes())
        os.replace(tmp_path / "other.db", spool)


async def test_port_in_use_found_after_the_spool_opened_exits_2(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any, busy_port: int) -> None:
    proc = await eventpipe(config(tmp_path, http={"address": "127.0.0.1", "port": busy_port}))
    code, elapsed = await exits(proc, within=30)
    assert code == EXIT_CONFIG, f"exit {code} after {elapsed:.1f} s"
    error = the_error(tmp_path / "stderr.log", f"cannot listen on 127.0.0.1:{busy_port}",
                      "http.port", "Address already in use", "set another http.port")
    assert error["exit_code"] == EXIT_CONFIG
    assert seconds_since(error) <= MARGIN, "the process lingered after the error"
    # The spool had been opened, and was closed again (the last connection out removes the WAL).
    assert (tmp_path / "spool.db").exists()
    assert not (tmp_path / "spool.db-wal").exists()
    assert not api.watch_requests(), "nothing may watch when start-up failed"


async def test_receiver_that_cannot_start_stops_the_run_with_2(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any) -> None:
    (tmp_path / "taken").mkdir()  # the file receiver's path is a directory
    receivers = [{"name": "dump", "file": {"path": str(tmp_path / "events.jsonl")}},
                 {"name": "broken", "file": {"path": str(tmp_path / "taken")}}]
    route = {"routes": [{"match": [{"receiver": "dump"}]}, {"match": [{"receiver": "broken"}]}]}
    proc = await eventpipe(config(tmp_path, receivers=receivers, route=route))
    log = tmp_path / "stderr.log"
    await wait_until(lambda: any(r.get("level") == "error" for r in log_records(log))
                     or proc.returncode is not None, within=30, what="the receiver's error")
    code, elapsed = await exits(proc, within=SHUTDOWN + MARGIN)
    assert code == EXIT_CONFIG, f"exit {code} after {elapsed:.1f} s"
    the_error(log, "receiver broken cannot start", "Is a directory", str(tmp_path / "taken"))


async def test_lease_taken_by_another_replica_exits_1_without_touching_it(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any) -> None:
    proc = await sending(eventpipe, api, tmp_path, leaderElection=ELECTION)
    log = tmp_path / "stderr.log"

    lease = api.leases.get(LEASE) or {}
    api.leases.put({**lease, "spec": {**lease["spec"], "holderIdentity": "other",
                                      "leaseDurationSeconds": 60}})
    code, elapsed = await exits(proc, within=RENEW_DEADLINE + SHUTDOWN + MARGIN)
    assert code == EXIT_LEADERSHIP_LOST, f"exit {code} after {elapsed:.1f} s"
    the_error(log, "leadership lost", f"the Lease default/{LEASE} is held by other",
              "exiting 1")
    assert api.leases.holder(LEASE) == "other", "a replica that lost the Lease must not write it"


async def test_lease_api_failing_beyond_renew_deadline_exits_1(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any) -> None:
    proc = await sending(eventpipe, api, tmp_path, leaderElection=ELECTION)
    log = tmp_path / "stderr.log"

    api.leases.unavailable = True
    code, elapsed = await exits(proc, within=RENEW_DEADLINE + SHUTDOWN + MARGIN)
    assert code == EXIT_LEADERSHIP_LOST, f"exit {code} after {elapsed:.1f} s"
    the_error(log, "leadership lost",
              f"could not renew the Lease default/{LEASE} within renewDeadline (2s)")


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_spool_file_gone_while_running_exits_3(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any, how: str) -> None:
    proc = await sending(eventpipe, api, tmp_path)
    log = tmp_path / "stderr.log"

    lose_spool(tmp_path, how)
    code, elapsed = await exits(proc, within=SPOOL_CHECK_INTERVAL + SHUTDOWN + MARGIN)
    assert code == EXIT_SPOOL_LOST, f"exit {code} after {elapsed:.1f} s"
    what = "deleted" if how == "deleted" else "replaced by another file"
    the_error(log, f"the spool {tmp_path / 'spool.db'} was {what}")


def _not_sqlite(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "spool.db").write_text("these are notes, not a database\n" * 100)
    return {}


def _spool_is_a_directory(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "spool.db").mkdir()
    return {}


def _corrupted(tmp_path: Path) -> dict[str, Any]:
    """An SQLite file with a valid header and garbage after it, the schema table included
    (a torn copy, a bad disk)."""
    spool = tmp_path / "spool.db"
    with closing(sqlite3.connect(spool)) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.executemany("INSERT INTO notes (body) VALUES (?)", [("x" * 500,)] * 200)
        db.commit()
    size = spool.stat().st_size
    with spool.open("r+b") as handle:
        handle.seek(100)  # the 100-byte file header stays: it still looks like SQLite
        handle.write(b"\xde\xad" * ((size - 100) // 2))
    return {}


def _newer_schema(tmp_path: Path) -> dict[str, Any]:
    """A spool whose schema version is above this eventpipe's (a newer one wrote it)."""
    with closing(sqlite3.connect(tmp_path / "spool.db")) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 1),))
        db.commit()
    return {}


START_UP: dict[str, tuple[Callable[[Path], dict[str, Any]], list[str]]] = {
    # name: (change to the config or the folder, what the one line must say)
    "no kubeconfig": (lambda tmp: {"kubeconfig": str(tmp / "missing")},
                      ["kubeconfig", "missing does not exist", "--kubeconfig"]),
    "no spool directory": (lambda tmp: {"spool": {"path": str(tmp / "gone" / "spool.db")}},
                           ["cannot open the spool", "gone does not exist", "spool.path"]),
    "spool not SQLite": (_not_sqlite, ["cannot open the spool", "file is not a database",
                                       "move the file away"]),
    "spool is a directory": (_spool_is_a_directory, ["cannot open the spool",
                                                     "it is a directory"]),
    "spool corrupted": (_corrupted, ["cannot open the spool", "malformed",
                                     "move the file away"]),
    "spool from a newer schema": (_newer_schema, [
        "cannot open the spool", f"schema version {SCHEMA_VERSION + 1}", "newer eventpipe",
        "move the file away"]),
}


@pytest.mark.parametrize("case", sorted(START_UP))
async def test_start_up_problems_are_one_line_and_exit_2(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any, case: str) -> None:
    change, fragments = START_UP[case]
    proc = await eventpipe(config(tmp_path, **change(tmp_path)))
    code, elapsed = await exits(proc, within=30)
    assert code == EXIT_CONFIG, f"exit {code} after {elapsed:.1f} s"
    error = the_error(tmp_path / "stderr.log", *fragments)
    assert seconds_since(error) <= MARGIN, "the process lingered after the error"
    assert not api.watch_requests()


def test_a_thread_that_never_ends_cannot_keep_the_process_alive() -> None:
    """The backstop `run` arms once the pipeline returned: a non-daemon thread stuck for good
    (as in a call to a hung disk) would otherwise hold the interpreter at exit forever."""
    script = ("import threading\n"
              "from eventpipe.fatal import exit_backstop\n"
              "threading.Thread(target=threading.Event().wait, name='stuck').start()\n"
              "exit_backstop(3, grace=0.5)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=20)
    assert result.returncode == 3, result
    assert "still running 0.5s after the pipeline stopped (a thread did not end); exiting 3" \
        in result.stderr


async def test_no_kubeconfig_anywhere_outside_a_cluster_exits_2(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any) -> None:
    """No `kubeconfig` key, no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, no in-cluster
    service account environment."""
    env = {k: v for k, v in os.environ.items()
           if k != "KUBECONFIG" and not k.startswith("KUBERNETES_")}
    home = tmp_path / "home"
    home.mkdir()
    proc = await eventpipe(config(tmp_path, kubeconfig=None),
                           {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1"})
    code, _ = await exits(proc, within=30)
    assert code == EXIT_CONFIG
    the_error(tmp_path / "stderr.log", "no kubeconfig and not in a cluster",
              "set `kubeconfig` in the config, --kubeconfig or $KUBECONFIG")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may create files in: a read-only tmpfs when running as root (root
    ignores permission bits), else mode 0555. Unmounted / restored at the end."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with tmpfs(folder, "ro,size=1m"):
        yield folder


async def test_spool_directory_read_only_exits_2(
        api: FakeApiServer, tmp_path: Path, eventpipe: Any, read_only_dir: Path) -> None:
    spool = read_only_dir / "spool.db"
    proc = await eventpipe(config(tmp_path, spool={"path": str(spool)}))
    code, _ = await exits(proc, within=30)
    assert code == EXIT_CONFIG
    the_error(tmp_path / "stderr.log", f"cannot open the spool {spool}",
              f"check that {read_only_dir} is writable")
    assert not api.watch_requests()
