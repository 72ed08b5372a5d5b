"""Keeps a receiver under its peer's rate limit (`rateLimit.perMinute`).

IM bots refuse messages past a fixed rate (WeCom: 20 a minute per robot) and a refused message
only comes back later through the retry backoff. Waiting for a token *before* posting keeps the
bot's limit from ever being hit.

The limiter is a token bucket of `per_minute` tokens (so a burst of `per_minute` goes out at
once) in which each token comes back exactly one minute after it was spent. A bucket that
refills continuously would let nearly twice the rate through in a sliding minute (a full burst,
then the refill); bots count a sliding minute, so tokens return the way the bot forgets.

The driver asks `take(n)` before each send and sends only as many events as it was granted;
the rest wait in memory for the next tokens and, behind them, in the spool (the cursor has not
moved), so nothing is dropped. Clock and sleep are passed in, so a test runs minutes of
waiting in no time; `sleep` returns True when the worker is stopping, which ends the wait.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[bool]]
"""Wait so many seconds; True if the wait was cut short because the worker is stopping."""

PERIOD = 60.0
"""Seconds after which a spent token is back."""


class TokenBucket:
    """At most `per_minute` events in any minute; bursts of up to `per_minute`."""

    def __init__(self, per_minute: int, *, sleep: Sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute!r}")
        self.capacity = per_minute
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[float] = deque()  # when each token out now was spent, oldest first

    def available(self) -> int:
        """Tokens free now."""
        back = self._clock() - PERIOD
        spent = self._spent
        while spent and spent[0] <= back:
            spent.popleft()
        return self.capacity - len(spent)

    async def take(self, wanted: int) -> int:
        """Wait until at least one token is free, then take up to `wanted`; returns how many
        were taken (0 only when the wait was cut short by stopping)."""
        if wanted <= 0:
            return 0
        while True:
            free = self.available()
            if free:
                granted = min(wanted, free)
                now = self._clock()
                self._spent.extend(now for _ in range(granted))
                return granted
            if await self._sleep(self._spent[0] + PERIOD - self._clock()):
                return 0
