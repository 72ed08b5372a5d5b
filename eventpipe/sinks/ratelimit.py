"""A token bucket that keeps a receiver under its peer's rate limit (`rateLimit.perMinute`).

IM bots refuse messages past a fixed rate (WeCom: 20 a minute per robot) and a refused message
only comes back later through the retry backoff. Waiting for a token *before* posting keeps the
bot's limit from ever being hit. The bucket holds at most `per_minute` tokens (the burst) and
refills continuously at `per_minute / 60` per second; each event sent takes one token.

The driver asks `take(n)` before each send and sends only as many events as it was granted;
the rest wait in memory for the next tokens and, behind them, in the spool (the cursor has not
moved), so nothing is dropped. Clock and sleep are passed in, so a test runs a minute of
waiting in no time; `sleep` returns True when the worker is stopping, which ends the wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[bool]]
"""Wait so many seconds; True if the wait was cut short because the worker is stopping."""


class TokenBucket:
    """`per_minute` events a minute with bursts of up to `per_minute`."""

    def __init__(self, per_minute: float, *, sleep: Sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute!r}")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        """Tokens added per second."""
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity  # a fresh start may burst
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def available(self) -> int:
        """Whole tokens in the bucket now."""
        self._refill()
        return math.floor(self._tokens)

    async def take(self, wanted: int) -> int:
        """Wait until at least one token is free, then take up to `wanted`; returns how many
        were taken (0 only when the wait was cut short by stopping)."""
        if wanted <= 0:
            return 0
        while True:
            self._refill()
            have = math.floor(self._tokens + 1e-9)  # a refill a float ulp short is whole
            if have >= 1:
                granted = min(wanted, have)
                self._tokens = max(0.0, self._tokens - granted)
                return granted
            # Sleep exactly until the next whole token; a float shortfall loops once more.
            if await self._sleep((1.0 - self._tokens) / self.rate):
                return 0
