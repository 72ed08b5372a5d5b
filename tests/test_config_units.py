"""Durations and sizes as written in the config file."""

from __future__ import annotations

import pytest

from eventpipe.config import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("50ms", 0.05),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("1m0.5s", 60.5),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("30", 30.0),
        ("0.8", 0.8),
        (" 10s ", 10.0),
        (30, 30.0),
        (0.8, 0.8),
        (0, 0.0),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["", "5 minutes", "m", "5x", "-5s", "1h-30m", "s5", -1, True, "5m30", "1e3s"]
)
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("500MB", 500_000_000),
        ("500M", 500_000_000),
        ("2Gi", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
        ("1.5Ki", 1536),
        ("10k", 10_000),
        ("1T", 10**12),
        ("64B", 64),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "big", "2 Gigs", "-1", -1, "iB", True, "5X"])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)  # type: ignore[arg-type]
