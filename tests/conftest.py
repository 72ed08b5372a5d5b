"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakeapi import FakeApiServer


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeApiServer]:
    """A running fake API server with a kubeconfig at tmp_path/kubeconfig."""
    async with FakeApiServer() as server:
        server.write_kubeconfig(tmp_path / "kubeconfig")
        yield server
