"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApiServer]:
    """A running fake API server with a kubeconfig at tmp_path/kubeconfig."""
    async with FakeApiServer() as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        yield server


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
