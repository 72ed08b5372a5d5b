"""Storing a receiver's ack until it lands, without sending its batch again.

An ack is a small write (the cursor row, and the batch's dead letters). When the spool cannot
take it — the disk is full, the file is locked too long — the events were delivered all the
same: sending the batch again would duplicate it at the receiver, once per failed attempt.
So the worker keeps the batch as sent and retries only the ack, with backoff, until it is
stored or the process stops (then the batch repeats once after the restart, as after a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import Counter

from eventpipe.core.backoff import exponential_backoff

log = logging.getLogger("eventpipe.driver")

ACK_RETRY_INITIAL = 0.2
ACK_RETRY_MAX = 5.0
"""Seconds between ack attempts: short, so delivery resumes soon after space returns."""


class AckTarget(Protocol):
    """The spool's ack, as a worker calls it."""

    async def ack(self, receiver: str, acked_seq: int, *,
                  dead: Sequence[tuple[int, str]] = ()) -> None: ...


async def ack_until_stored(spool: AckTarget, receiver: str, acked_seq: int,
                           dead: Sequence[tuple[int, str]], *, stopping: asyncio.Event,
                           failures: Counter) -> bool:
    """Store the ack, retrying failures (counted in `failures`, labelled by receiver) with
    backoff; False when `stopping` was set and the ack still did not land."""
    delays = exponential_backoff(initial=ACK_RETRY_INITIAL, maximum=ACK_RETRY_MAX)
    failed = 0
    while True:
        try:
            await spool.ack(receiver, acked_seq, dead=dead)
        except Exception as exc:  # whatever it was, re-sending cannot help the ack
            failed += 1
            failures.labels(receiver).inc()
            if failed == 1:
                log.warning("cannot store the receiver's ack; retrying it, the delivered batch "
                            "is not sent again", extra={"receiver": receiver,
                                                        "acked_seq": acked_seq,
                                                        "error": str(exc) or type(exc).__name__})
            if stopping.is_set():
                log.warning("stopping with the ack not stored: the batch repeats on restart",
                            extra={"receiver": receiver, "acked_seq": acked_seq})
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), next(delays))
            continue
        if failed:
            log.info("receiver's ack stored again", extra={
                "receiver": receiver, "acked_seq": acked_seq, "failed_attempts": failed})
        return True
