"""The fake API server's object store: one resourceVersion counter, the live Events, the history.

Like etcd behind kube-apiserver, every write bumps one global revision and is kept in a history
that watches replay from; `compact()` forgets history so older resume points get 410 Gone.
Because each write takes exactly the next revision, the change with revision `r` sits at
`history[r - base - 1]`: a watch resumes in O(1) and streams by slicing.

Each change keeps the version it replaced (`prev`), so a paginated LIST can be served from a
consistent snapshot at any revision still in history (undo newer changes), as etcd MVCC does.
Serialised bytes are cached on the change, so N watchers cost one `orjson.dumps` per version.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from tests.fakeapi.convert import Obj, merge_patch, to_core, to_events_v1

VIEWS = ("core", "events")


class Compacted(Exception):
    """The asked-for revision is older than the compaction point."""

    def __init__(self, requested: int, base: int) -> None:
        super().__init__(f"revision {requested} compacted (oldest {base})")
        self.requested = requested
        self.base = base


@dataclass(slots=True, eq=False)
class Change:
    """One write: the object as it is after the write (for DELETED: as it was, new revision)."""

    rv: int
    type: str
    uid: str
    namespace: str
    obj: Obj
    prev: Change | None = None
    _cache: dict[str, bytes] | None = None  # serialised forms, made on first use

    def line(self, view: str) -> bytes:
        """The newline-terminated watch line for this change in `view` ("core" or "events")."""
        if self._cache is None:
            self._cache = {}
        cached = self._cache.get(view)
        if cached is None:
            body = self.obj if view == "core" else to_events_v1(self.obj)
            cached = b'{"type":"%s","object":%s}\n' % (self.type.encode(), orjson.dumps(body))
            self._cache[view] = cached
        return cached

    def added_line(self, view: str) -> bytes:
        """The watch line announcing this version as ADDED (the initial state of a watch)."""
        if self.type == "ADDED":
            return self.line(view)
        body = self.obj if view == "core" else to_events_v1(self.obj)
        return b'{"type":"ADDED","object":%s}\n' % orjson.dumps(body)

    def item(self, view: str) -> bytes:
        """The LIST item bytes: like kube-apiserver, items carry no kind/apiVersion."""
        if self._cache is None:
            self._cache = {}
        cached = self._cache.get("item:" + view)
        if cached is None:
            body = self.obj if view == "core" else to_events_v1(self.obj)
            cached = orjson.dumps(
                {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
            )
            self._cache["item:" + view] = cached
        return cached


def now_rfc3339() -> str:
    """Current time the way Kubernetes writes metav1.Time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventStore:
    """In-memory Events with a global revision, history, compaction and snapshots."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.rv = 0
        """The newest revision written."""
        self.base = 0
        """The compaction point: history holds exactly the changes with rv > base."""
        self.history: list[Change] = []
        self.live: dict[str, Change] = {}
        self.on_change = on_change
        self._snapshots: dict[tuple[int, str | None], list[Change]] = {}

    # ---- writes -------------------------------------------------------------------------
    def put(self, event: Obj) -> Change:
        """Store a new object version: ADDED for a new uid, MODIFIED (full replace) otherwise."""
        change = self._record(_prepared(to_core(event)))
        self._changed()
        return change

    def put_many(self, events: Iterable[Obj]) -> int:
        """Bulk `put` that serialises core watch lines now and wakes watchers once.

        The cyclic GC is paused meanwhile: with hundreds of thousands of live dicts, its full
        passes made a bulk load quadratic (measured 10x slower at 200k events).
        """
        n = 0
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for event in events:
                self._record(_prepared(to_core(event))).line("core")
                n += 1
        finally:
            if was_enabled:
                gc.enable()
        self._changed()
        return n

    def modify(self, uid: str, changes: Obj) -> Change:
        """Merge-patch the live object with `uid` into a new MODIFIED version."""
        current = self._live(uid)
        patched = merge_patch(current.obj, changes)
        patched["metadata"]["uid"] = uid  # a patch may not move the object elsewhere
        change = self._record(patched)
        self._changed()
        return change

    def delete(self, uid: str) -> Change:
        """DELETED (an expired Event): the last state under a new revision."""
        current = self._live(uid)
        self.rv += 1
        obj = dict(current.obj)
        obj["metadata"] = {**current.obj["metadata"], "resourceVersion": str(self.rv)}
        change = Change(self.rv, "DELETED", uid, current.namespace, obj, prev=current)
        self.history.append(change)
        del self.live[uid]
        self._changed()
        return change

    def compact(self, upto: int | None = None) -> None:
        """Forget history up to `upto` (default: everything), like etcd compaction."""
        target = self.rv if upto is None else min(upto, self.rv)
        if target <= self.base:
            return
        del self.history[: target - self.base]
        self.base = target
        for change in self.live.values():
            if change.rv <= target:
                change.prev = None  # nothing can undo past the base: let old versions go
        self._snapshots = {k: v for k, v in self._snapshots.items() if k[0] >= target}

    def forget(self, upto: int) -> None:
        """Compact to `upto` and drop the live Events last written at or before it, without a
        DELETED: a long benchmark's memory stays bounded, as if those Events had expired and
        every watcher had already seen them go."""
        self.compact(upto)
        self.live = {uid: change for uid, change in self.live.items() if change.rv > self.base}

    # ---- reads --------------------------------------------------------------------------
    def get(self, uid: str) -> Obj | None:
        """The live core object for `uid`, or None."""
        change = self.live.get(uid)
        return None if change is None else change.obj

    def changes_after(self, rv: int, limit: int) -> list[Change]:
        """Up to `limit` changes with revision > rv, oldest first; Compacted if rv < base."""
        if rv < self.base:
            raise Compacted(rv, self.base)
        start = max(rv - self.base, 0)
        return self.history[start : start + limit]

    def snapshot(self, rv: int, namespace: str | None) -> list[Change]:
        """The live versions at revision `rv`, sorted by namespace/name like etcd keys."""
        if rv < self.base:
            raise Compacted(rv, self.base)
        key = (rv, namespace)
        items = self._snapshots.get(key)
        if items is None:
            state = dict(self.live)
            for change in reversed(self.history[rv - self.base :]):
                if change.prev is None:
                    state.pop(change.uid, None)
                else:
                    state[change.uid] = change.prev
            items = sorted(
                (c for c in state.values() if namespace is None or c.namespace == namespace),
                key=lambda c: (c.namespace, c.obj["metadata"].get("name", ""), c.uid),
            )
            if len(self._snapshots) >= 8:
                del self._snapshots[next(iter(self._snapshots))]
            self._snapshots[key] = items
        return items

    # ---- internals ----------------------------------------------------------------------
    def _live(self, uid: str) -> Change:
        try:
            return self.live[uid]
        except KeyError:
            raise KeyError(f"no live event with uid {uid}") from None

    def _record(self, obj: Obj) -> Change:
        meta = obj["metadata"]
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        uid = meta["uid"]
        prev = self.live.get(uid)
        kind = "ADDED" if prev is None else "MODIFIED"
        change = Change(self.rv, kind, uid, meta["namespace"], obj, prev=prev)
        self.history.append(change)
        self.live[uid] = change
        return change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _prepared(obj: Obj) -> Obj:
    """Fill what the API server would: uid, namespace, name (`<object>.<hex nanos>`)."""
    meta = dict(obj.get("metadata") or {})
    involved = obj.get("involvedObject") or {}
    if not meta.get("uid"):  # not setdefault: uuid4() and now() cost more than the rest
        meta["uid"] = str(uuid.uuid4())
    if not meta.get("namespace"):
        meta["namespace"] = involved.get("namespace") or "default"
    if not meta.get("name"):
        meta["name"] = f"{involved.get('name', 'event')}.{time.time_ns():x}"
    if "creationTimestamp" not in meta:
        meta["creationTimestamp"] = now_rfc3339()
    obj["metadata"] = meta
    return obj
