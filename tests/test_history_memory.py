"""`eventpipe events --limit 0` streams: its peak memory does not grow with the spool. A real
`eventpipe events` process over a spool of ~200 MB of Event bodies stays under a bound that
holding the rows (let alone their parsed objects and the whole text) passes many times over
(before streaming: 0.9–1.2 GiB on this spool, docs/performance.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.history_stream import build_spool, peak_rss

EVENTS = 40_000
MESSAGE_BYTES = 5_000  # ~200 MB of bodies in all
RSS_BOUND_MIB = 120  # the interpreter and its imports take ~50 MiB of it


@pytest.fixture(scope="module")
def big_spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "spool.db"
    build_spool(path, EVENTS, MESSAGE_BYTES)
    return path


@pytest.mark.parametrize(("output", "at_least_lines"), [
    ("json", EVENTS * 20), ("yaml", EVENTS * 15), ("table", EVENTS + 1)])
def test_limit_0_peak_memory_is_bounded(big_spool: Path, output: str,
                                        at_least_lines: int) -> None:
    rss, lines, _ = peak_rss(big_spool, output)
    assert lines >= at_least_lines, lines  # every event was printed
    assert rss < RSS_BOUND_MIB, f"{output}: peak RSS {rss:.0f} MiB"
