"""Session fixture for the real-cluster tier: skipped with a note when `make kube` has not
built the binaries, a failure instead when EVENTPIPE_REQUIRE_KUBE=1 (as .ci/run sets)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realkube import controlplane

REQUIRED = os.environ.get("EVENTPIPE_REQUIRE_KUBE") == "1"


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Under EVENTPIPE_REQUIRE_KUBE=1 a skip in this tier is turned into a failure."""
    if REQUIRED and call.excinfo is not None and call.excinfo.errisinstance(
            pytest.skip.Exception):
        raise AssertionError(f"real-cluster test skipped under EVENTPIPE_REQUIRE_KUBE=1: "
                             f"{call.excinfo.value}")


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    """A running control plane shared by the session's real-cluster tests."""
    missing = controlplane.missing_binaries()
    if missing:
        note = (f"real-cluster tier: {', '.join(missing)} not in {controlplane.binary_dir()}; "
                "run `make kube` (needs Go, see docs/kube-tests.md)")
        if REQUIRED:
            pytest.fail(note + " (EVENTPIPE_REQUIRE_KUBE=1)")
        pytest.skip(note)
    root: Path = tmp_path_factory.mktemp("kube")
    started = time.monotonic()
    plane = controlplane.start(root)
    print(f"control plane {controlplane.kube_version()} ready in "
          f"{time.monotonic() - started:.1f}s")
    yield plane
    plane.stop()
