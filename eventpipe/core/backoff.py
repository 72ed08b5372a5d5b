"""Backoff delays as a pure generator, so retry timing is tested without sleeping.

Used by the watcher (0.8 s → 30 s) and by sink workers (0.5 s → `retry.maxBackoff`, 30 s by
default, full jitter).
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def exponential_backoff(
    *, initial: float, maximum: float, factor: float = 2.0, jitter: bool = True,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays growing by `factor` from `initial`, capped at `maximum`, forever.

    With `jitter` each delay is drawn uniformly from [0, cap] ("full jitter"), which spreads
    retries of many workers apart; the cap still grows exponentially.
    """
    draw = (rng or random.Random()).uniform
    cap = initial
    while True:
        yield draw(0.0, cap) if jitter else cap
        cap = min(maximum, cap * factor)


def watch_timeout(low: float, high: float, rng: random.Random | None = None) -> int:
    """A watch `timeoutSeconds` in [low, high): jittered so replicas do not reconnect together."""
    value = (rng or random.Random()).uniform(low, high)
    return max(1, min(int(value), int(high) - 1 if high > low + 1 else int(low)))
