"""`eventpipe replay`: re-send part of the spool to one receiver, leaving every cursor alone.

Ranges: events spooled within `since` seconds, from a seq on (optionally to a seq), or the
receiver's dead letters (which are resolved when they go through). Normal routing applies to
ranges (the receiver gets what it would have got); dead letters were routed already.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from eventpipe.config import Config
from eventpipe.delivery.driver import Delivery
from eventpipe.delivery.settings import delivery_settings
from eventpipe.metrics import Metrics
from eventpipe.routing import compile_route
from eventpipe.sinks.registry import build_sink
from eventpipe.spool import Spool
from eventpipe.spool.from_config import open_spool
from eventpipe.spool.rows import StoredRow


@dataclass
class ReplayResult:
    """What one replay did."""

    sent: int = 0
    dead: int = 0
    skipped: int = 0


async def replay(config: Config, *, receiver: str, since: float | None = None,
                 from_seq: int | None = None, to_seq: int | None = None,
                 dead_letters: bool = False, stopping: asyncio.Event | None = None
                 ) -> ReplayResult:
    """Re-send the chosen range to `receiver`; raises ValueError for an unknown receiver."""
    receiver_cfg = next((r for r in config.receivers if r.name == receiver), None)
    if receiver_cfg is None:
        known = ", ".join(r.name for r in config.receivers) or "none"
        raise ValueError(f"no receiver named {receiver!r} in the config (have: {known})")
    sink = build_sink(receiver_cfg, cluster_name=config.cluster_name)
    settings = delivery_settings(receiver_cfg, max_event_age=config.max_event_age_seconds)
    delivery = Delivery(sink, router=compile_route(config.route), settings=settings,
                        metrics=Metrics(), stopping=stopping)
    spool = await open_spool(config)
    result = ReplayResult()
    await sink.start()
    try:
        if dead_letters:
            await _replay_dead_letters(spool, delivery, receiver, settings.batch_max_events,
                                       result)
        else:
            await _replay_range(spool, delivery, receiver, settings.batch_max_events, result,
                                since=since, from_seq=from_seq, to_seq=to_seq)
    finally:
        await sink.close()
        await spool.close()
    return result


async def _replay_range(spool: Spool, delivery: Delivery[Any], receiver: str, batch: int,
                        result: ReplayResult, *, since: float | None, from_seq: int | None,
                        to_seq: int | None) -> None:
    # Stop at the head seen at start, so a running pipeline's new events are not chased.
    last = min(to_seq, await spool.head_seq()) if to_seq is not None else await spool.head_seq()
    after = 0
    window_start = time.time() - since if since is not None else None
    while after < last:
        rows = await spool.read_since(since=window_start, from_seq=from_seq, after_seq=after,
                                      limit=batch)
        rows = [row for row in rows if row.seq <= last]
        if not rows:
            break
        await _send(spool, delivery, receiver, rows, result, route=True)
        after = rows[-1].seq


async def _replay_dead_letters(spool: Spool, delivery: Delivery[Any], receiver: str, batch: int,
                               result: ReplayResult) -> None:
    seqs = sorted(letter[1] for letter in await spool.dead_letters(receiver))
    for start in range(0, len(seqs), batch):
        rows = await spool.read_seqs(seqs[start:start + batch])
        await _send(spool, delivery, receiver, rows, result, route=False)


async def _send(spool: Spool, delivery: Delivery[Any], receiver: str, rows: list[StoredRow],
                result: ReplayResult, *, route: bool) -> None:
    payloads, kept, dead = delivery.encode(rows, route=route)
    result.skipped += len(rows) - len(kept) - len(dead)
    if payloads:
        more_dead, completed = await delivery.send(payloads, kept)
        if not completed:
            raise asyncio.CancelledError("replay interrupted")
        dead.extend(more_dead)
    failed = {seq for seq, _ in dead}
    delivered = [row.seq for row in kept if row.seq not in failed]
    result.sent += len(delivered)
    result.dead += len(dead)
    if dead:
        await spool.record_dead_letters(receiver, dead)
    if not route:
        await spool.resolve_dead_letters(receiver, delivered)
