"""The collector settings `eventpipe run` applies (in a child: freezing would leak into pytest)."""

from __future__ import annotations

import subprocess
import sys

from eventpipe.core.collector import YOUNG_THRESHOLD

CHILD = """
import gc
from eventpipe.core.collector import tune_collector
default = gc.get_threshold()
tune_collector()
print(default[1:] == gc.get_threshold()[1:], gc.get_threshold()[0], gc.get_freeze_count() > 0)
"""


def test_tune_collector_freezes_startup_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", str(YOUNG_THRESHOLD), "True"]
