"""The methods tests call on FakeApiServer: write Events and inject faults.

Kept apart from the HTTP code so the test-facing surface reads in one place. Every method is
synchronous: it changes the store or the fault state and pokes the open watch streams, which
act on it at their next turn (so a test can call it and then read the client side).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from tests.fakeapi.convert import Obj
from tests.fakeapi.corpus import corpus_paths, ordered_versions, read_events
from tests.fakeapi.faults import Faults, RequestRecord
from tests.fakeapi.store import EventStore, now_rfc3339
from tests.fakeapi.watch import WatchStream


def _copy(obj: Obj) -> Obj:
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


class Controls:
    """Event writing, fault injection and request-log queries (mixed into FakeApiServer)."""

    store: EventStore
    faults: Faults
    streams: set[WatchStream]
    requests: list[RequestRecord]

    # ---- events -----------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        """The newest resourceVersion written."""
        return self.store.rv

    def add(self, event: Obj) -> Obj:
        """Store `event` (core or events.k8s.io shape) and return a copy as stored.

        uid, namespace, name and creationTimestamp are filled when missing; the
        resourceVersion is always assigned. A uid that is already live makes it MODIFIED.
        """
        return _copy(self.store.put(_copy(event)).obj)

    def add_many(self, events: Iterable[Obj]) -> int:
        """Bulk add for benchmarks: takes ownership of the dicts, pre-serialises watch lines."""
        return self.store.put_many(events)

    def modify(self, uid: str, changes: Obj) -> Obj:
        """Merge-patch (None deletes a key) the live Event into a new MODIFIED version."""
        return _copy(self.store.modify(uid, changes).obj)

    def bump_count(self, uid: str) -> Obj:
        """What the kubelet does to a repeated event: count+1, lastTimestamp now (and series)."""
        current = self.store.get(uid)
        if current is None:
            raise KeyError(f"no live event with uid {uid}")
        now = now_rfc3339()
        changes: Obj = {"count": int(current.get("count") or 1) + 1, "lastTimestamp": now}
        series = current.get("series")
        if isinstance(series, dict):
            micro = now.replace("Z", ".000000Z")
            changes["series"] = {
                "count": int(series.get("count") or 1) + 1,
                "lastObservedTime": micro,
            }
        return self.modify(uid, changes)

    def delete(self, uid: str) -> Obj:
        """DELETED, as when the Event's TTL expires."""
        return _copy(self.store.delete(uid).obj)

    def get(self, uid: str) -> Obj | None:
        """A copy of the live Event with `uid`, or None."""
        obj = self.store.get(uid)
        return None if obj is None else _copy(obj)

    def load_corpus(self, paths: Iterable[Path | str] | None = None) -> int:
        """Add tests/corpus (or `paths`); a repeated uid becomes MODIFIED. Returns count."""
        events = ordered_versions(read_events(corpus_paths() if paths is None else paths))
        return self.store.put_many(events)

    # ---- faults -------------------------------------------------------------------------
    def compact(self, upto: int | None = None) -> None:
        """Forget history up to `upto` (default: now): older resume points get 410."""
        self.store.compact(upto)
        for ws in self.streams:
            ws.poke()

    def disconnect_all(self, *, clean: bool = False) -> int:
        """End every open watch: aborted mid-stream, or a clean end when `clean`. Returns count."""
        for ws in self.streams:
            ws.cut = "clean" if clean else "abort"
            ws.poke()
        return len(self.streams)

    def disconnect_every(self, n: int | None) -> None:
        """Cut each watch connection opened from now on after `n` events (None: never)."""
        self.faults.cut_after = n

    def fail_next(
        self, n: int, status: int, retry_after: int | None = None, *, only: str | None = None
    ) -> None:
        """The next `n` Event requests (only "list" or "watch" ones if asked) get `status`."""
        self.faults.queue_failures(n, status, retry_after, only)

    def inject_raw_line(self, line: bytes) -> None:
        """Write `line` (e.g. b'{not json') into every open watch stream."""
        data = line if line.endswith(b"\n") else line + b"\n"
        for ws in self.streams:
            ws.raw.append(data)
            ws.poke()

    def set_gone_mode(self, mode: str) -> None:
        """How a too-old watch is refused: "http" (410 status) or "stream" (200 + ERROR line)."""
        if mode not in ("http", "stream"):
            raise ValueError(f"gone mode must be 'http' or 'stream', not {mode!r}")
        self.faults.gone_mode = mode

    def forbid(self, *namespaces: str, all_namespaces: bool = False) -> None:
        """RBAC: 403 for these namespaces, and for all-namespaces requests if asked."""
        self.faults.forbidden.update(namespaces)
        self.faults.forbid_all_namespaces = self.faults.forbid_all_namespaces or all_namespaces

    def allow_all(self) -> None:
        """Undo every `forbid`."""
        self.faults.forbidden.clear()
        self.faults.forbid_all_namespaces = False

    def send_bookmark(self) -> int:
        """Ask every open stream that allows bookmarks for one now; returns how many."""
        targets = [ws for ws in self.streams if ws.bookmarks]
        for ws in targets:
            ws.bookmark_due = True
            ws.poke()
        return len(targets)

    # ---- request log ---------------------------------------------------------------------
    def event_requests(self, *, watch: bool | None = None) -> list[RequestRecord]:
        """Requests on Event collections, optionally only watches (True) or lists (False)."""
        return [r for r in self.requests if r.is_events and (watch is None or r.is_watch == watch)]

    def list_requests(self) -> list[RequestRecord]:
        """LIST requests on Event collections (each page is one)."""
        return self.event_requests(watch=False)

    def watch_requests(self) -> list[RequestRecord]:
        """WATCH requests on Event collections."""
        return self.event_requests(watch=True)
