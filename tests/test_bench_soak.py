"""The soak benchmark counts right: its webhook tallies each served version, answers 503 while
down, and a short soak (seconds, not minutes) delivers every version once to both receivers
through an outage. Only what arrived is asserted, never how fast."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from bench.soak import SoakOptions, run
from bench.soak_hook import SoakHook
from bench.soak_tally import STAMP_ANNOTATION, VersionTally


def _event(rv: int) -> dict[str, object]:
    return {"metadata": {"resourceVersion": str(rv),
                         "annotations": {STAMP_ANNOTATION: "1700000000.0"}}}


def _post(url: str, events: list[int]) -> int:
    body = orjson.dumps([_event(rv) for rv in events])
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tally_counts_missing_duplicates_and_foreign() -> None:
    tally = VersionTally(first_rv=101, served=3)
    for rv in (101, 103, 103, 103, 99, 104):
        tally.add(rv)
    assert tally.summary() == {"served": 3, "delivered": 2, "missing": 1, "duplicates": 2,
                               "foreign": 2}
    assert not tally.complete()
    tally.add(102)
    assert tally.complete()


def test_hook_answers_503_while_down_and_counts_only_accepted() -> None:
    hook = SoakHook(VersionTally(first_rv=1, served=4))
    hook.start()
    try:
        assert _post(hook.url, [1, 2]) == 200
        hook.down()
        assert _post(hook.url, [3, 4]) == 503
        assert hook.tally.distinct == 2 and hook.refused == 1
        hook.up()
        assert _post(hook.url, [3, 4]) == 200
        assert hook.tally.complete() and hook.tally.duplicates == 0
        assert hook.first_accepted_after_up is not None
        assert hook.caught_up_at is not None  # all served versions arrived
    finally:
        hook.stop()


@pytest.mark.timeout(240)
def test_short_soak_delivers_every_version_once_through_an_outage(tmp_path: Path) -> None:
    options = SoakOptions(minutes=0.4, down_from=0.1, down_for=0.1, rate=200, sample_every=4.0,
                          max_backoff=1.0)
    result = run(options, tmp_path / "soak")
    for receiver in ("file", "hook"):
        assert result[receiver] == {"served": options.served, "delivered": options.served,
                                    "missing": 0, "duplicates": 0, "foreign": 0}, receiver
    assert result["hook_503s"] > 0
    assert result["drain_s"] is not None
    down = [i for i in result["intervals"] if i["hook_down"]]
    assert down and max(i["hook_backlog"] for i in down) > 0
    assert result["intervals"][-1]["spool_rows"] == options.served
    assert sum(i["file_lines"] for i in result["intervals"]) == options.served
