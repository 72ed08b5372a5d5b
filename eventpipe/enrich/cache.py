"""The involved-object cache: an LRU keyed by object uid, so lookups cost nothing per event.

Why these rules:
- Keyed by uid (a reference without one by apiVersion/kind/namespace/name): a name can be
  reused by a new object, a uid never is.
- Negative entries: a deleted object is cached as `deleted` like any other, so a storm of
  events about a pod that is gone costs one 404, not one per event.
- Freshness: an entry is refreshed when an Event refers to a newer resourceVersion of the
  object (labels may have changed), but at most once per `refresh_after` seconds, so a pod
  whose resourceVersion climbs with every event (a crash loop) still costs one lookup per
  interval, not one per event; and after `max_age`, as labels can change without an Event.
- Failures (429, 5xx, 403, timeouts) are remembered for `retry_after` seconds: a failing API is
  asked about each object once per interval, not once per batch.
"""

from __future__ import annotations

from collections import OrderedDict

from eventpipe.enrich.apply import ObjectInfo


def newer(event_rv: str, cached_rv: str) -> bool:
    """True when an Event names a later resourceVersion than the cached one. Versions are
    opaque strings; the API server's are etcd revisions, compared as numbers when they are."""
    if not event_rv or event_rv == cached_rv:
        return False
    if event_rv.isdigit() and cached_rv.isdigit():
        return int(event_rv) > int(cached_rv)
    return True


class ObjectCache:
    """LRU of `ObjectInfo` by key, plus a small table of recent failures."""

    def __init__(self, *, size: int, refresh_after: float, max_age: float,
                 retry_after: float) -> None:
        self.size = max(1, size)
        self._refresh_after = refresh_after
        self._max_age = max_age
        self._retry_after = retry_after
        self._entries: OrderedDict[str, ObjectInfo] = OrderedDict()
        self._failed: dict[str, float] = {}  # key -> when the next attempt is allowed

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> ObjectInfo | None:
        """The entry (fresh or not), marked as recently used."""
        info = self._entries.get(key)
        if info is not None:
            self._entries.move_to_end(key)
        return info

    def put(self, key: str, info: ObjectInfo) -> None:
        """Store an entry, evicting the least recently used beyond `size`."""
        self._entries[key] = info
        self._entries.move_to_end(key)
        self._failed.pop(key, None)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def wants_fetch(self, key: str, event_rv: str, now: float) -> bool:
        """True when `key` should be (re)fetched now: missing, or stale by the rules above,
        and not inside a failure's retry interval."""
        failed_until = self._failed.get(key)
        if failed_until is not None:
            if now < failed_until:
                return False
            del self._failed[key]
        info = self._entries.get(key)
        if info is None:
            return True
        age = now - info.fetched_at
        if info.deleted and info.uid:
            return False  # a uid never comes back (a name can: those expire below)
        if age >= self._max_age:
            return True
        if info.deleted or not info.served:
            return False
        return age >= self._refresh_after and newer(event_rv, info.resource_version)

    def failed(self, key: str, now: float) -> None:
        """Remember a failed lookup until `retry_after` has passed."""
        if len(self._failed) >= self.size:
            self._failed = {k: t for k, t in self._failed.items() if t > now}
            if len(self._failed) >= self.size:
                self._failed.clear()  # bounded even when everything fails
        self._failed[key] = now + self._retry_after

    def failing(self, key: str, now: float) -> bool:
        """True while a failure of `key` is remembered."""
        until = self._failed.get(key)
        return until is not None and now < until
