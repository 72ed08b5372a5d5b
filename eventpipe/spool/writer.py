"""Group commit between the watcher and the spool.

The watcher pushes records here and never waits for a sink; this task commits them in
transactions of up to `batch_max_events` or `batch_max_wait` after the first pending item,
whichever comes first, each with the stream's resume resourceVersion in the same transaction.
The buffer is bounded: when the spool cannot keep up (or is full under `whenFull: block`) the
watcher stops reading and the API server holds the events (a relist recovers if it compacts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from eventpipe.core.backoff import exponential_backoff
from eventpipe.metrics import Metrics
from eventpipe.spool.gaps import Gap
from eventpipe.spool.rows import NewRecord

log = logging.getLogger("eventpipe.writer")

# A queued item: (stream, resource_version or None, record or None, deleted uid or None).
Item = tuple[str, str | None, NewRecord | None, str | None]


@dataclass(slots=True)
class _StreamGroup:
    """One stream's share of a committed group."""

    records: list[NewRecord] = field(default_factory=list)
    resume_rv: str | None = None
    """The last resourceVersion queued for the stream: its resume point after the commit."""
    deleted_uids: list[str] = field(default_factory=list)


class AppendTarget(Protocol):
    """What the writer needs from the spool."""

    async def append_counted(self, records: list[NewRecord], *, stream: str,
                             resource_version: str | None) -> list[tuple[int, int]]: ...

    async def forget(self, uid: str) -> None: ...

    async def reject(self, rows: list[tuple[str, str, bytes]]) -> None: ...

    async def head_seq(self) -> int: ...

    async def record_gap(self, *, stream: str, namespace: str, from_rv: str, to_rv: str,
                         after_seq: int) -> Gap: ...


class SpoolWriter:
    """Buffers watch output and commits it in groups."""

    def __init__(self, spool: AppendTarget, *, metrics: Metrics, batch_max_events: int = 500,
                 batch_max_wait: float = 0.05, max_buffered: int | None = None,
                 max_buffered_bytes: int = 16 * 1024 * 1024,
                 full_errors: tuple[type[BaseException], ...] = (),
                 on_commit: Callable[[], None] | None = None,
                 max_group_bytes: int | None = None, count_events: bool = True) -> None:
        """`max_group_bytes`: most event bytes one commit carries (the spool's
        `largest_append`, which keeps its WAL within the byte budget); None: no limit.
        `count_events` False leaves the event counter to a `metrics` receiver."""
        self._spool = spool
        self._max_group_bytes = max_group_bytes
        self._count_events = count_events
        self._metrics = metrics
        self._batch = batch_max_events
        # Under a backlog a transaction takes up to 4 batches: every commit has a fixed cost
        # (an fsync, a trip to SQLite's thread, event-loop turns), so bigger groups are what
        # lets ingest keep up with a burst (docs/performance.md). A quiet stream still commits
        # every `batch_max_wait`.
        self._group = batch_max_events * 4
        self._wait = batch_max_wait
        self._max = max_buffered or batch_max_events * 8
        # Bodies range from 0.5 kB to 10+ kB: bound the buffer in bytes too, so a burst of
        # large Events cannot hold unbounded memory, while leaving room for a full group of
        # large events, which ingest speed depends on.
        self._max_bytes = max_buffered_bytes
        self._bytes = 0
        self._full_errors = full_errors
        self._on_commit = on_commit
        self._items: deque[Item] = deque()
        self._has_items = asyncio.Event()
        self._batch_ready = asyncio.Event()
        self._has_space = asyncio.Event()
        self._has_space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._caught_up = asyncio.Event()  # no more buffered than one commit takes
        self._caught_up.set()
        self._stuck = False  # the last commit failed (spool full or erroring)
        self._problem = ""
        self._rejects: list[tuple[str, str, bytes]] = []
        self.committed = 0
        """Records committed since start (inserted ones, duplicates excluded)."""

    @property
    def bounds(self) -> tuple[int, int]:
        """(events, bytes of bodies) this writer buffers at most before the watch waits
        (`spool.bufferMaxEvents`, `spool.bufferMaxBytes`)."""
        return self._max, self._max_bytes

    async def put(self, stream: str, rv: str | None, record: NewRecord | None,
                  deleted_uid: str | None = None) -> None:
        """Queue one item; waits only when the buffer is full (backpressure)."""
        await self.put_many([(stream, rv, record, deleted_uid)])

    async def put_many(self, items: list[Item]) -> None:
        """Queue `items` in order (one watch read's worth); waits only while the buffer is
        full. The event bound holds exactly; the byte bound may be passed by what one call
        brings (a watch read, `watch.readBufferSize`)."""
        queue = self._items
        done = 0
        while done < len(items):
            while len(queue) >= self._max or self._bytes >= self._max_bytes:
                self._has_space.clear()
                await self._has_space.wait()
            part = items[done : done + self._max - len(queue)]
            done += len(part)
            queue.extend(part)
            self._bytes += sum([len(item[2].body) for item in part if item[2] is not None])
            self._idle.clear()
            self._has_items.set()
            if len(queue) >= self._batch:
                self._batch_ready.set()
                if len(queue) > self._group and not self._stuck:
                    self._caught_up.clear()

    async def wait_caught_up(self, within: float) -> None:
        """Return once no more is buffered than one commit takes, or after `within` seconds.

        Sink workers call this before each batch. While the watch outruns the spool, storing
        goes first: an event not yet stored can still be lost (a restart, a 410 after the
        API server's window moved on), one stored can wait for its delivery. On a busy core
        the sinks' parsing and encoding otherwise take time from the commits.
        """
        if not self._caught_up.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._caught_up.wait(), within)

    def reject(self, stream: str, error: str, raw: bytes) -> None:
        """Keep a line that is not a valid Event; it is stored with the next group."""
        self._rejects.append((stream, error, raw))
        self._idle.clear()
        self._has_items.set()

    async def wait_idle(self) -> None:
        """Return once everything queued so far is committed."""
        await self._idle.wait()

    async def committed_head(self) -> int:
        """The spool's head seq once everything queued so far is committed."""
        await self._idle.wait()
        return await self._spool.head_seq()

    async def record_gap(self, *, stream: str, namespace: str, from_rv: str, to_rv: str,
                         after_seq: int) -> Gap:
        """Once everything queued so far is committed, record the gap that a relist of
        `stream`, stored after `after_seq`, closes (eventpipe.spool.gaps)."""
        await self._idle.wait()
        return await self._spool.record_gap(stream=stream, namespace=namespace,
                                            from_rv=from_rv, to_rv=to_rv, after_seq=after_seq)

    async def run(self) -> None:
        """Commit loop; cancel it after `wait_idle` to stop without losing queued items."""
        while True:
            await self._has_items.wait()
            if len(self._items) < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._batch_ready.wait(), self._wait)
            await self._commit_one_group()

    def _group_size(self) -> int:
        """How many buffered items the next commit takes: up to a group, cut at
        `max_group_bytes` (at least one item)."""
        count = min(self._group, len(self._items))
        limit = self._max_group_bytes
        if limit is None:
            return count
        size = 0
        for index in range(count):
            record = self._items[index][2]
            size += len(record.body) if record is not None else 0
            if size > limit and index:
                return index
        return count

    async def _commit_one_group(self) -> None:
        count = self._group_size()
        group = [self._items[i] for i in range(count)]
        await self._commit_with_retry(group)
        for _ in range(count):
            _, _, record, _ = self._items.popleft()
            if record is not None:
                self._bytes -= len(record.body)
        if len(self._items) < self._max and self._bytes < self._max_bytes:
            self._has_space.set()
        if len(self._items) <= self._group:
            self._caught_up.set()
        if len(self._items) < self._batch:
            self._batch_ready.clear()
        if not self._items and not self._rejects:
            self._has_items.clear()
            self._idle.set()

    @property
    def writable(self) -> bool:
        """False from a failed commit (spool full, or failing) until the next one succeeds."""
        return not self._stuck

    @property
    def problem(self) -> str:
        """Why the last commit failed ("" while writable), for /readyz."""
        return self._problem

    async def _commit_with_retry(self, group: list[Item]) -> None:
        # Short cap: once retention frees room, ingestion should resume within seconds.
        delays = exponential_backoff(initial=0.2, maximum=2.0)
        failures = 0
        while True:
            try:
                await self._commit(group)
            except self._full_errors as exc:
                if getattr(exc, "batch_too_large", False):
                    await self._commit_too_large(group)
                    return
                if getattr(exc, "retry_smaller", False) and len(group) > 1:
                    # Room for part of it now: commit the halves (each split again if needed).
                    half = len(group) // 2
                    await self._commit_with_retry(group[:half])
                    await self._commit_with_retry(group[half:])
                    return
                self._metrics.spool_full.inc()
                self._problem = f"spool full: {exc}"
                if not failures:
                    log.warning("spool full: watch paused until there is room again",
                                extra={"buffered": len(self._items), "reason": str(exc)})
            except sqlite3.Error as exc:  # a database error must not lose the group
                self._problem = f"spool append failed: {exc}"
                if not failures:
                    log.error("spool append failed; retrying the same group", extra={
                        "error": str(exc), "code": getattr(exc, "sqlite_errorname", "")})
            except Exception:  # a bug: keep the group, say where it came from
                self._problem = "spool append failed (see the log)"
                log.exception("spool append failed; retrying the same group")
            else:
                if self._stuck:
                    log.info("spool writable again; watch resumed",
                             extra={"failed_attempts": failures})
                self._stuck = False
                self._problem = ""
                return
            failures += 1
            # Stuck rather than slow (full, or failing): holding the sinks back cannot help
            # the commits, while their acks are what lets retention free room.
            self._stuck = True
            self._caught_up.set()
            await asyncio.sleep(next(delays))

    async def _commit_too_large(self, group: list[Item]) -> None:
        """The group does not fit the byte budget even alone: commit it in halves; a single
        event larger than the whole budget cannot be stored and is dropped, counted, logged."""
        if len(group) > 1:
            half = len(group) // 2
            await self._commit_with_retry(group[:half])
            await self._commit_with_retry(group[half:])
            return
        stream, rv, record, _ = group[0]
        self._metrics.spool_dropped.labels("larger_than_budget").inc()
        log.error("event larger than the whole spool budget dropped", extra={
            "stream": stream, "uid": record.uid if record else None, "resource_version": rv,
            "bytes": len(record.body) if record else 0})
        # Only the resume point moves past it.
        await self._commit([(stream, rv, None, None)])

    async def _commit(self, group: list[Item]) -> None:
        # Several streams (one per namespace) may share a group: one append per stream, each
        # with its own resume point.
        by_stream: dict[str, _StreamGroup] = {}
        for stream, rv, record, deleted in group:
            entry = by_stream.get(stream)
            if entry is None:
                entry = by_stream[stream] = _StreamGroup()
            if record is not None:
                entry.records.append(record)
            if rv is not None:
                entry.resume_rv = rv
            if deleted is not None:
                entry.deleted_uids.append(deleted)
        if self._rejects:
            rejects, self._rejects = self._rejects, []
            try:
                await self._spool.reject(rejects)
            except BaseException:
                self._rejects[:0] = rejects
                raise
        started = time.perf_counter()
        events = self._metrics.events
        for stream, entry in by_stream.items():
            records = entry.records
            inserted = await self._spool.append_counted(records, stream=stream,
                                                        resource_version=entry.resume_rv)
            if self._count_events:
                events.inc_many(_labelled(records, inserted))
            self.committed += len(inserted)
            self._metrics.spool_events.inc(len(inserted))
            if len(inserted) != len(records):
                self._metrics.spool_duplicates.inc(len(records) - len(inserted))
            for uid in entry.deleted_uids:
                await self._spool.forget(uid)
        self._metrics.spool_commit_seconds.observe(time.perf_counter() - started)
        if self._on_commit is not None:
            self._on_commit()


def _labelled(records: list[NewRecord], inserted: list[tuple[int, int]]
              ) -> Iterator[tuple[tuple[str, str, str, str, str], int]]:
    """(label set, count delta) of the inserted records that add occurrences, for
    `events_total`."""
    for index, delta in inserted:
        if delta:
            r = records[index]
            yield (r.namespace, r.kind, r.name, r.reason, r.type), delta
