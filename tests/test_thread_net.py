"""The net in tests/conftest.py: a session that leaves a non-daemon thread running fails,
names the thread and the test it appeared during, and exits instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import THREAD_GRACE
from tests.pipeline_harness import REPO

LEAKY = '''
import threading

never = threading.Event()


def test_passes_but_leaves_a_thread_behind():
    threading.Thread(target=never.wait, name="forgotten-worker").start()


def test_clean():
    worker = threading.Thread(target=lambda: None, name="joined-worker")
    worker.start()
    worker.join()
'''


def test_a_leaked_thread_fails_the_session_and_the_process_exits(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY)
    try:
        # The leaked thread waits forever: without the net this run would never end. With it,
        # the run takes start-up, collection, two tests and the grace period.
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
             "-q", "--rootdir", str(tmp_path), str(tmp_path / "test_leaky.py")],
            cwd=REPO, capture_output=True, text=True, timeout=20 + THREAD_GRACE,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the leaky session hung:\n{exc.stdout!r}\n{exc.stderr!r}") from None
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "2 passed" in output  # the tests themselves passed: the leak alone fails the run
    assert "1 non-daemon thread(s) still running" in output, output
    assert ("forgotten-worker: appeared during "
            "test_leaky.py::test_passes_but_leaves_a_thread_behind") in output, output
    assert "joined-worker" not in output
