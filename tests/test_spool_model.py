"""The spool against a plain in-memory model, driven by hypothesis through random operations.

Rules: appends (new versions of existing uids, duplicates of pairs seen before, DELETED
forgets), acks with dead letters from several receivers, dead-letter resolution, reads,
retention with a fake clock (so the history window matters), crash-and-reopen (a copy of the
files taken while the spool is open, i.e. what a SIGKILL leaves behind), and a tiny byte
budget under `block` or `dropOldest`. After every step the stored rows, cursors, dead letters
and resume points must equal the model's, and every dropped row must have been reported.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from eventpipe.spool import Spool, SpoolFullError
from eventpipe.spool.counting import WARM_WINDOW_SECONDS
from eventpipe.spool.rows import NewRecord
from eventpipe.spool.schema import PAGE_SIZE

T = TypeVar("T")
UIDS = [f"uid-{i}" for i in range(6)]
RECEIVERS = ["loki", "kafka", "hook"]
STREAMS = ["all", "ns-a"]
WINDOW = 60.0
# A fresh file has 13 pages (tables and indexes); three more fill after a few batches. Of a
# budget this small a quarter is the WAL's and two pages the WAL index's
# (eventpipe.spool.disk): the database gets 16 pages.
SMALL_BUDGET = 24 * PAGE_SIZE

# (seq, uid, rv, observed_at, occurrences, count_delta, body)
Row = tuple[int, str, str, float, int, int, bytes]

item = st.tuples(
    st.sampled_from(["new", "new", "dup"]),
    st.integers(0, len(UIDS) - 1),
    st.integers(1, 30),
    st.integers(50, 8000),
    st.integers(0, 10_000),
)


class SpoolModel(RuleBasedStateMachine):
    """State: a list of rows plus cursors, dead letters, resume points and the occurrence book."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.path = self.dir / "0.db"
        self.generation = 0
        self.now = 1_000_000.0
        self.rows: list[Row] = []
        self.next_seq = 1
        self.last_observed = 0.0
        self.book: dict[str, int] = {}
        self.forgotten: set[str] = set()
        self.cursors: dict[str, int] = {}
        self.dead: dict[tuple[str, int], tuple[str, int, float, float]] = {}
        self.resume: dict[str, str] = {}
        self.pairs: dict[tuple[str, str], NewRecord] = {}
        self.next_rv = 1
        self.drops: list[int] = []
        self.dropped_by_model = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def clock(self) -> float:
        return self.now

    async def _open(self) -> Spool:
        return await Spool.open(
            self.path,
            max_bytes=self.max_bytes,
            when_full=self.when_full,
            history_window=WINDOW,
            on_drop=lambda n, why: self.drops.append(n),
            clock=self.clock,
        )

    @initialize(budget=st.sampled_from(["none", "block", "dropOldest"]))
    def open_spool(self, budget: str) -> None:
        self.max_bytes = None if budget == "none" else SMALL_BUDGET
        self.when_full = "block" if budget == "none" else budget
        self.spool = self.run(self._open())

    def teardown(self) -> None:
        if hasattr(self, "spool"):
            self.run(self.spool.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- model operations -----------------------------------------------------------------

    def _model_drop(self, n: int) -> None:
        self.rows = self.rows[n:]
        self.dropped_by_model += n

    def _model_append(self, records: list[NewRecord], stream: str, rv: str | None) -> list[int]:
        observed = max(self.now, self.last_observed)
        stored = {(r[2], r[1]) for r in self.rows}
        pending: dict[str, int] = {}
        inserted: list[int] = []
        for i, rec in enumerate(records):
            uid, rvs, occ = rec.uid, rec.resource_version, rec.occurrences
            if (rvs, uid) in stored:
                continue
            stored.add((rvs, uid))
            prev = pending.get(uid, self.book.get(uid))
            delta = occ if prev is None or occ < prev else occ - prev
            pending[uid] = occ
            self.rows.append((self.next_seq, uid, rvs, observed, occ, delta, rec.body))
            self.next_seq += 1
            inserted.append(i)
        self.book.update(pending)
        self.last_observed = observed
        if rv is not None:
            self.resume[stream] = rv
        return inserted

    # -- rules ----------------------------------------------------------------------------

    @rule(dt=st.floats(-5.0, 40.0))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule(
        items=st.lists(item, min_size=0, max_size=12),
        stream=st.sampled_from(STREAMS),
        save_rv=st.booleans(),
    )
    def append(
        self, items: list[tuple[str, int, int, int, int]], stream: str, save_rv: bool
    ) -> None:
        records: list[NewRecord] = []
        known = list(self.pairs.values())
        for kind, u, occ, size, pick in items:
            uid = UIDS[u]
            if kind == "dup" and known:
                records.append(known[pick % len(known)])
                continue
            if uid in self.forgotten:
                continue  # DELETED is final: an expired Event has no new versions
            rv = str(self.next_rv)
            self.next_rv += 1
            rec = NewRecord(uid=uid, resource_version=rv, event_time=None, namespace="ns",
                            kind="Pod", name="p", reason="BackOff", type="Warning",
                            occurrences=occ, body=bytes([65 + u]) * size)
            self.pairs[(rv, uid)] = rec
            records.append(rec)
        watch_rv = f"w{self.next_rv}" if save_rv else None
        self.drops.clear()
        try:
            got = self.run(self.spool.append(records, stream=stream, resource_version=watch_rv))
        except SpoolFullError:
            assert self.max_bytes is not None
            event(f"append refused ({self.when_full})")
            self._model_drop(sum(self.drops))
            return
        self._model_drop(sum(self.drops))
        if self.drops:
            event("dropOldest dropped rows")
        assert self.drops == [] or self.when_full == "dropOldest"
        assert got == self._model_append(records, stream, watch_rv)

    @rule(items=st.lists(item, min_size=1, max_size=12), stream=st.sampled_from(STREAMS))
    def append_more(self, items: list[tuple[str, int, int, int, int]], stream: str) -> None:
        """Appends are the hot path: give them twice the weight of other rules."""
        self.append(items, stream, save_rv=True)

    @rule(u=st.integers(0, len(UIDS) - 1))
    def forget(self, u: int) -> None:
        self.run(self.spool.forget(UIDS[u]))
        self.book.pop(UIDS[u], None)
        self.forgotten.add(UIDS[u])

    @rule(
        receiver=st.sampled_from(RECEIVERS),
        back=st.integers(0, 20),
        dead=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["400", "413"])), max_size=3),
    )
    def ack(self, receiver: str, back: int, dead: list[tuple[int, str]]) -> None:
        acked = max(0, self.next_seq - 1 - back)
        dead = [(seq, err) for seq, err in dict(dead).items() if seq <= acked]
        self.run(self.spool.ack(receiver, acked, dead=dead))
        self.cursors[receiver] = acked
        for seq, err in dead:
            old = self.dead.get((receiver, seq))
            first = old[2] if old else self.now
            self.dead[(receiver, seq)] = (err, (old[1] if old else 0) + 1, first, self.now)

    @precondition(lambda self: bool(self.dead))
    @rule(pick=st.integers(0, 100))
    def resolve(self, pick: int) -> None:
        receiver, seq = sorted(self.dead)[pick % len(self.dead)]
        self.run(self.spool.resolve_dead_letters(receiver, [seq]))
        del self.dead[(receiver, seq)]

    @rule(after=st.integers(0, 60), limit=st.integers(1, 20))
    def read_after(self, after: int, limit: int) -> None:
        got = self.run(self.spool.read_after(after, limit))
        assert [r.seq for r in got] == [r[0] for r in self.rows if r[0] > after][:limit]

    @rule(receivers=st.sets(st.sampled_from(RECEIVERS)), later=st.sampled_from([0.0, 100.0]))
    def retention(self, receivers: set[str], later: float) -> None:
        now = self.now + later
        if receivers:
            bound = min(self.cursors.get(r, 0) for r in receivers)
        else:
            bound = self.rows[-1][0] if self.rows else 0
        held = {seq for _, seq in self.dead}
        gone = [r for r in self.rows if r[0] <= bound and r[3] < now - WINDOW and r[0] not in held]
        deleted = self.run(self.spool.retention(receivers, now=now if later else None))
        assert deleted == len(gone)
        if deleted:
            event("retention deleted rows")
        assert all(r[0] <= self.cursors.get(x, 0) for r in gone for x in receivers)
        self.rows = [r for r in self.rows if r not in gone]

    @rule()
    def crash_and_reopen(self) -> None:
        # What a SIGKILL leaves: the db and WAL as they are now (no checkpoint, no -shm).
        self.generation += 1
        new = self.dir / f"{self.generation}.db"
        shutil.copyfile(self.path, new)
        wal = Path(f"{self.path}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{new}-wal"))
        self.run(self.spool.close())
        self.path = new
        self.spool = self.run(self._open())
        newest = max((r[3] for r in self.rows), default=None)
        self.last_observed = newest if newest is not None else 0.0
        self.book = {}
        event("reopened with rows" if newest is not None else "reopened empty")
        if newest is not None:
            for r in self.rows:
                if r[3] >= newest - WARM_WINDOW_SECONDS:
                    self.book[r[1]] = r[4]

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def rows_match(self) -> None:
        if not hasattr(self, "spool"):
            return
        got = self.run(self.spool.read_after(0, 10_000))
        assert [(r.seq, r.uid, r.resource_version, r.observed_at, r.occurrences, r.count_delta,
                 r.body) for r in got] == self.rows
        seqs = [r.seq for r in got]
        assert all(a < b for a, b in itertools.pairwise(seqs))
        assert len({(r.resource_version, r.uid) for r in got}) == len(got)
        assert self.run(self.spool.head_seq()) == (seqs[-1] if seqs else 0)

    @invariant()
    def bookkeeping_matches(self) -> None:
        if not hasattr(self, "spool"):
            return
        for receiver in RECEIVERS:
            assert self.run(self.spool.cursor(receiver)) == self.cursors.get(receiver, 0)
        got = self.run(self.spool.dead_letters())
        want = [(r, s, *v) for (r, s), v in sorted(self.dead.items())]
        assert got == want
        for stream in STREAMS:
            assert self.run(self.spool.resume_point(stream)) == self.resume.get(stream)


SpoolModel.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestSpoolModel = SpoolModel.TestCase
