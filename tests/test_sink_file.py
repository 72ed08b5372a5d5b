"""The file receiver: lines on disk, lumberjack-style rotation, errors and idempotent lifecycle.

Time is a fake clock passed in; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import errno
import json
import multiprocessing
import multiprocessing.queues
import os
import pwd
import shutil
import tempfile
from contextlib import AsyncExitStack, closing
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from eventpipe.delivery.contract import PermanentSinkError, RetriableSinkError
from eventpipe.sinks.file.rotation import RotatingFile
from eventpipe.sinks.file.sink import FileSink
from tests.test_sink_stdout import corpus_bodies, same_json

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC).timestamp()
DAY = 86400.0


class Clock:
    """Fake wall clock in epoch seconds."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def all_lines(directory: Path, current: str = "events.jsonl") -> list[bytes]:
    """Backups in rotation order (their names sort by time), then the current file."""
    files = [n for n in names(directory) if n != current] + [current]
    return [line for n in files for line in (directory / n).read_bytes().splitlines()]


async def test_corpus_round_trip_in_new_directory(
    tmp_path: Path, cleanup: AsyncExitStack
) -> None:
    path = tmp_path / "a" / "b" / "events.jsonl"
    sink = FileSink(name="f", path=str(path), layout=None, cluster_name="c1")
    cleanup.push_async_callback(sink.close)
    bodies = corpus_bodies()
    await sink.start()
    for i in range(0, len(bodies), 500):
        batch = [sink.encode(None, b) for b in bodies[i : i + 500]]
        assert await sink.send(batch) == []
    # Visible to another reader before close: nothing waits in a user-space buffer.
    lines = path.read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert len(lines) == len(bodies)
    for line, body in zip(lines, bodies, strict=True):
        assert same_json(line, {**orjson.loads(body), "clusterName": "c1"})


async def test_start_close_idempotent_and_reopen_appends(
    tmp_path: Path, cleanup: AsyncExitStack
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"old":1}\n')
    sink = FileSink(name="f", path=str(path), layout=None)
    cleanup.push_async_callback(sink.close)
    await sink.close()  # before start: nothing to do
    await sink.start()
    await sink.start()
    await sink.send([b'{"a":1}'])
    await sink.close()
    await sink.close()
    await sink.send([b'{"b":2}'])  # after close: reopens
    await sink.close()
    assert path.read_bytes() == b'{"old":1}\n{"a":1}\n{"b":2}\n'


def test_backup_name_is_lumberjacks(tmp_path: Path) -> None:
    f = RotatingFile(str(tmp_path / "events.jsonl"), clock=Clock())
    assert f.backup_name(T0 + 0.25) == str(tmp_path / "events-2026-11-23T12-00-00.250.jsonl")
    plain = RotatingFile(str(tmp_path / "events"), clock=Clock())
    assert plain.backup_name(T0) == str(tmp_path / "events-2026-11-23T12-00-00.000")


def test_rotates_before_exceeding_size_and_keeps_order(tmp_path: Path) -> None:
    clock = Clock()
    with closing(RotatingFile(str(tmp_path / "events.jsonl"), max_bytes=90, clock=clock)) as f:
        lines = [b"%02d" % i + b"x" * 27 for i in range(10)]  # 30 bytes with the newline
        for line in lines:
            f.write_lines([line])
            clock.now += 1
    # 3 lines fill the file exactly (90 bytes), a 4th would make 120 > 90.
    assert names(tmp_path) == [
        "events-2026-11-23T12-00-03.000.jsonl",
        "events-2026-11-23T12-00-06.000.jsonl",
        "events-2026-11-23T12-00-09.000.jsonl",
        "events.jsonl",
    ]
    assert all((tmp_path / n).stat().st_size <= 90 for n in names(tmp_path))
    assert all_lines(tmp_path) == lines


def test_batch_is_split_across_files(tmp_path: Path) -> None:
    with closing(RotatingFile(str(tmp_path / "events.jsonl"), max_bytes=100, clock=Clock())) as f:
        lines = [b"%02d" % i + b"y" * 27 for i in range(10)]
        big = b"z" * 250  # a line larger than the limit gets a file of its own
        f.write_lines([*lines, big, b"end"])
    sizes = sorted((tmp_path / n).stat().st_size for n in names(tmp_path))
    assert sizes == [4, 30, 90, 90, 90, 251]
    # Same-millisecond rotations (frozen clock) get distinct names: nothing is overwritten.
    assert len(names(tmp_path)) == 6
    assert all_lines(tmp_path) == [*lines, big, b"end"]


def test_max_backups_keeps_the_newest(tmp_path: Path) -> None:
    clock = Clock()
    with closing(
        RotatingFile(str(tmp_path / "events.jsonl"), max_bytes=10, max_backups=2, clock=clock)
    ) as f:
        for i in range(6):
            f.write_lines([b"line-%d" % i])  # 7 bytes: every write rotates
            clock.now += 60
    assert names(tmp_path) == [
        "events-2026-11-23T12-04-00.000.jsonl",
        "events-2026-11-23T12-05-00.000.jsonl",
        "events.jsonl",
    ]
    assert all_lines(tmp_path) == [b"line-3", b"line-4", b"line-5"]


def test_max_age_deletes_old_backups_on_rotation_and_open(tmp_path: Path) -> None:
    clock = Clock()
    path = str(tmp_path / "events.jsonl")
    with closing(RotatingFile(path, max_bytes=10, max_age_s=2 * DAY, clock=clock)) as f:
        f.write_lines([b"day0-a"])
        f.write_lines([b"day0-b"])  # rotation at day 0
        clock.now += 1.5 * DAY
        f.write_lines([b"day1-x"])  # rotation at day 1.5: the day-0 backup is 1.5 days old, kept
        assert len(names(tmp_path)) == 3
        clock.now += 1 * DAY
        f.write_lines([b"day2-x"])  # rotation at day 2.5: the day-0 backup is now too old
    assert names(tmp_path) == [
        "events-2026-11-25T00-00-00.000.jsonl",
        "events-2026-11-26T00-00-00.000.jsonl",
        "events.jsonl",
    ]
    clock.now += 10 * DAY
    with closing(RotatingFile(path, max_bytes=10, max_age_s=2 * DAY, clock=clock)) as again:
        again.open()  # pruning also runs when the file is opened, as in lumberjack
    assert names(tmp_path) == ["events.jsonl"]


def test_unrelated_files_are_left_alone(tmp_path: Path) -> None:
    for other in ["events-notatime.jsonl", "other-2026-11-23T12-00-00.000.jsonl", "x.txt"]:
        (tmp_path / other).write_text("keep")
    with closing(
        RotatingFile(str(tmp_path / "events.jsonl"), max_bytes=5, max_backups=1, clock=Clock())
    ) as f:
        f.write_lines([b"aaaa"])
        f.write_lines([b"bbbb"])
        f.write_lines([b"cccc"])
    assert "events-notatime.jsonl" in names(tmp_path)
    assert "other-2026-11-23T12-00-00.000.jsonl" in names(tmp_path)
    assert len(names(tmp_path)) == 5


async def test_file_sink_rotation_in_megabytes(tmp_path: Path, cleanup: AsyncExitStack) -> None:
    clock = Clock()
    path = tmp_path / "events.jsonl"
    sink = FileSink(
        name="f", path=str(path), layout=None, max_size_mb=1, max_backups=1, clock=clock
    )
    cleanup.push_async_callback(sink.close)
    line = b'{"m":"' + b"x" * (100 * 1024) + b'"}'
    for _ in range(25):  # ~2.5 MB in 100 kB lines: 10 per file
        await sink.send([line])
        clock.now += 1
    await sink.close()
    assert names(tmp_path) == ["events-2026-11-23T12-00-20.000.jsonl", "events.jsonl"]
    assert (tmp_path / names(tmp_path)[0]).stat().st_size <= 1024 * 1024
    assert len(path.read_bytes().splitlines()) == 5


async def test_path_is_a_directory_is_permanent_at_start(
    tmp_path: Path, cleanup: AsyncExitStack
) -> None:
    sink = FileSink(name="f", path=str(tmp_path), layout=None)
    cleanup.push_async_callback(sink.close)
    with pytest.raises(PermanentSinkError):
        await sink.start()
    # At send time the events are not at fault: retriable, never dead-lettered.
    with pytest.raises(RetriableSinkError):
        await sink.send([b"{}"])


def _start_as_nobody(target: str, result: multiprocessing.queues.Queue[str]) -> None:
    """In a forked child: drop to `nobody` when root, then start a FileSink at `target`."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    async def start() -> str:
        sink = FileSink(name="f", path=target, layout=None)
        try:
            await sink.start()
        except PermanentSinkError as exc:
            return f"permanent: {exc}"
        finally:
            await sink.close()
        return "started"

    result.put(asyncio.run(start()))


def test_permission_denied_is_permanent_at_start() -> None:
    """A directory the process may not write. Root ignores modes, so the sink starts in a
    forked child that drops to the unprivileged `nobody` first (no exec: the interpreter may
    sit where `nobody` cannot read)."""
    base = Path(tempfile.mkdtemp(prefix="eventpipe-perm-"))
    locked = base / "locked"
    try:
        base.chmod(0o755)
        locked.mkdir(mode=0o555)
        context = multiprocessing.get_context("fork")
        result: multiprocessing.queues.Queue[str] = context.Queue()
        child = context.Process(target=_start_as_nobody, args=(str(locked / "e.jsonl"), result))
        child.start()
        outcome = result.get(timeout=60)
        child.join(timeout=60)
        assert child.exitcode == 0
        assert outcome.startswith("permanent:") and "Permission denied" in outcome, outcome
        assert not (locked / "e.jsonl").exists()
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


async def test_permission_error_mapping_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup: AsyncExitStack
) -> None:
    """The same mapping as above, for when the suite runs as root (which ignores modes)."""

    def denied(self: RotatingFile) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", self.path)

    monkeypatch.setattr(RotatingFile, "open", denied)
    sink = FileSink(name="f", path=str(tmp_path / "e.jsonl"), layout=None)
    cleanup.push_async_callback(sink.close)
    with pytest.raises(PermanentSinkError, match="Permission denied"):
        await sink.start()


async def test_transient_error_at_start_defers_to_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup: AsyncExitStack
) -> None:
    """A volume not ready yet must not kill the worker: send retries until it is."""
    real_open = RotatingFile.open

    def full(self: RotatingFile) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RotatingFile, "open", full)
    sink = FileSink(name="f", path=str(tmp_path / "e.jsonl"), layout=None)
    cleanup.push_async_callback(sink.close)
    await sink.start()
    with pytest.raises(RetriableSinkError, match="No space left"):
        await sink.send([b"{}"])
    monkeypatch.setattr(RotatingFile, "open", real_open)
    assert await sink.send([b"{}"]) == []
    await sink.close()
    assert (tmp_path / "e.jsonl").read_bytes() == b"{}\n"


async def test_failed_write_leaves_no_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleanup: AsyncExitStack
) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(name="f", path=str(path), layout=None)
    cleanup.push_async_callback(sink.close)
    await sink.send([b'{"a":1}'])
    real_write = os.write

    def disk_fills(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[:5]))  # part of the batch gets in, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    # RotatingFile writes with os.write; only this test thread writes files meanwhile.
    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(RetriableSinkError, match="No space left"):
        await sink.send([b'{"b":2}', b'{"c":3}'])
    monkeypatch.setattr(os, "write", real_write)
    await sink.send([b'{"b":2}', b'{"c":3}'])  # the driver's retry
    await sink.close()
    assert [json.loads(x) for x in path.read_bytes().splitlines()] == [
        {"a": 1},
        {"b": 2},
        {"c": 3},
    ]


def test_empty_path_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"receivers\.f\.file\.path"):
        FileSink(name="f", path="", layout=None)
