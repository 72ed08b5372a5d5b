"""The objects the metadata caches hold: by uid, by name, with tombstones and a bound.

- By uid, since an Event names its object by uid and a name can be reused; and by (kind,
  namespace, name), for Events whose reference carries no real uid (the kubelet's Node events
  use the node's name as uid).
- Tombstones: a deleted object keeps its last labels and owner for `tombstone_ttl` seconds,
  marked deleted, because its last Events (Killing, a pod's final BackOff) arrive after it is
  gone. A relist that no longer returns an object deletes it the same way.
- Bound: at most `max_objects` entries, tombstones included. At the bound the oldest tombstone
  goes first; when there is none, a new object is not stored (`refused` counts it) and the
  enricher falls back to GETs for it.
- Label, annotation and ownerReference values are interned: the pods of one ReplicaSet share
  one labels dict and one ownerReferences list (docs/performance.md measures what it saves).
  Cached values are never mutated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from eventpipe.enrich.apply import ObjectInfo

NameKey = tuple[str, str, str]  # (kind, namespace, name)


class MetadataStore:
    """Every watched object's `ObjectInfo`, shared by all informers."""

    def __init__(self, *, max_objects: int, tombstone_ttl: float) -> None:
        self.max_objects = max_objects
        self.tombstone_ttl = tombstone_ttl
        self._by_uid: dict[str, ObjectInfo] = {}
        self._by_name: dict[NameKey, str] = {}
        self._tombstones: OrderedDict[str, float] = OrderedDict()  # uid -> deleted at
        self._interned: dict[Any, Any] = {}
        self.per_kind: dict[str, int] = {}
        """Live (not deleted) objects per kind, for the size gauge."""
        self.refused = 0
        """Objects not stored because the store was full."""
        self.generation = 0
        """Moves when an object that can own others (anything but a Pod) changes, so the
        additions cached per object (eventpipe.enrich.apply) are recomputed."""

    def __len__(self) -> int:
        return len(self._by_uid)

    @property
    def tombstones(self) -> int:
        """Deleted objects still kept."""
        return len(self._tombstones)

    def get(self, uid: str) -> ObjectInfo | None:
        """The object (live or tombstone) with this uid."""
        return self._by_uid.get(uid)

    def by_name(self, kind: str, namespace: str, name: str) -> ObjectInfo | None:
        """The object now holding this name (live, or its tombstone)."""
        uid = self._by_name.get((kind, namespace, name))
        return None if uid is None else self._by_uid.get(uid)

    def upsert(self, info: ObjectInfo) -> bool:
        """Store a live object's newest metadata; False when the store is full."""
        old = self._by_uid.get(info.uid)
        if old is None and len(self._by_uid) >= self.max_objects and not self._evict_one():
            self.refused += 1
            return False
        info.labels = self._intern(info.labels)
        info.annotations = self._intern(info.annotations)
        info.owner_references = self._intern(info.owner_references)
        if old is None or old.deleted:
            self.per_kind[info.kind] = self.per_kind.get(info.kind, 0) + 1
            self._tombstones.pop(info.uid, None)
        self._by_uid[info.uid] = info
        self._by_name[(info.kind, info.namespace, info.name)] = info.uid
        if info.kind != "Pod":
            self.generation += 1
        return True

    def delete(self, uid: str, now: float, last: ObjectInfo | None = None) -> None:
        """Mark an object deleted (with `last`, its final metadata, when the watch sent it)."""
        info = self._by_uid.get(uid)
        if info is None:
            if last is None or not self.upsert(last):
                return
            info = last
        elif last is not None and not info.deleted:
            self.upsert(last)
            info = last
        if info.deleted:
            return
        info.deleted = True
        info.added = info.added_members = None
        self.per_kind[info.kind] = self.per_kind.get(info.kind, 1) - 1
        self._tombstones[uid] = now

    def replace(self, kind: str, namespace: str, seen: set[str], now: float) -> int:
        """After a relist of `kind` in `namespace` ("" = all): objects it did not return were
        deleted while the watch was away. Returns how many."""
        gone = [uid for uid, info in self._by_uid.items()
                if info.kind == kind and not info.deleted and uid not in seen
                and (not namespace or info.namespace == namespace)]
        for uid in gone:
            self.delete(uid, now)
        return len(gone)

    def expire(self, now: float) -> int:
        """Forget tombstones older than `tombstone_ttl`; returns how many."""
        expired = 0
        cutoff = now - self.tombstone_ttl
        while self._tombstones:
            uid, deleted_at = next(iter(self._tombstones.items()))
            if deleted_at > cutoff:
                break
            self._forget(uid)
            expired += 1
        if len(self._interned) > 2 * self.max_objects:
            self._interned.clear()  # bounded: live objects keep their values, new ones re-intern
        return expired

    def kinds(self) -> Iterable[str]:
        """Kinds with at least one stored object."""
        return self.per_kind.keys()

    def _evict_one(self) -> bool:
        if not self._tombstones:
            return False
        self._forget(next(iter(self._tombstones)))
        return True

    def _forget(self, uid: str) -> None:
        self._tombstones.pop(uid, None)
        info = self._by_uid.pop(uid, None)
        if info is None:
            return
        key = (info.kind, info.namespace, info.name)
        if self._by_name.get(key) == uid:
            del self._by_name[key]

    def _intern(self, value: Any) -> Any:
        if not value:
            return None
        try:
            key = _frozen(value)
        except TypeError:
            return value
        shared = self._interned.get(key)
        if shared is None:
            self._interned[key] = shared = value
        return shared


def _frozen(value: Any) -> Any:
    """A hashable key equal for equal JSON values (not orjson.dumps: its bytes objects keep
    their oversized buffers, kilobytes per key)."""
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return ("[]", *(_frozen(v) for v in value))
    hash(value)
    return value
