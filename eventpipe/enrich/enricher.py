"""Adds the involved object's labels, annotations, owners and node to Events at delivery time.

Objects of the watched kinds (eventpipe.enrich.caches: Pods, workloads, Nodes) come from the
list+watch metadata caches: no request per event. At start, `prefetch(..., wait_sync=True)`
(a route or a receiver's template reads labels or annotations) waits until the caches have
synced, within `enrich.syncTimeout`; an Event naming a resourceVersion the cache has not
reached yet waits for it up to `deadline`. Objects a synced cache does not hold (deleted
before it listed them, or refused by a full cache), kinds whose cache has not synced (no route
waits for it, or API errors keep it from syncing) and degraded kinds (403, not served) use
the GETs below, like every other kind: once per object, cached, a 404 marking it deleted.

For the other kinds, two halves, so the send path never waits on the API beyond one short,
bounded pause a batch:
- `prefetch(events)` (async, once per batch): starts the lookups the batch needs — objects not
  cached, or stale by eventpipe.enrich.cache's rules, and their controller owners — concurrently,
  each paid for from the kubeQPS/kubeBurst budget, and waits for the ones it started at most
  `deadline` seconds. Lookups still running then finish in the background and fill the cache.
- `enrich(event)` (sync, per event): caches only. An enriched event is counted in
  `eventpipe_enrich_enriched_total{source}` (`watch` or `lookup`); one whose object is not
  cached goes on unenriched and is counted in `eventpipe_enrich_skipped_total{reason}`:
  `timeout` (lookup still running),
  `rate_limited` (budget spent), `api_error` (429/5xx/403/connection error, retried after
  `retry_after`), `uncached` (never fetched, e.g. evicted by a cache smaller than a batch).
Lookups are single-flight per object; results are counted in `eventpipe_enrich_lookups_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from eventpipe.enrich.apply import (
    Event,
    ObjectInfo,
    apply,
    cached_additions,
    object_info,
    reference,
)
from eventpipe.enrich.cache import ObjectCache
from eventpipe.enrich.caches import MetadataCaches
from eventpipe.enrich.client import LookupBudget, ObjectClient
from eventpipe.enrich.discovery import ResourceMap
from eventpipe.enrich.informer import MetadataInformer
from eventpipe.enrich.served import ServedReference, splice_at

log = logging.getLogger("eventpipe.enrich")
_MAX_CHAIN = 8


@dataclass(frozen=True, slots=True)
class EnrichSettings:
    """How much enrichment may cost."""

    cache_size: int = 1024
    """Objects kept (config `cacheSize`)."""
    qps: float = 0.0
    """Lookups a second (config `kubeQPS`; 0: 5)."""
    burst: int = 0
    """Lookups that may be made at once after a quiet spell (config `kubeBurst`; 0: 10)."""
    deadline: float = 0.5
    """Longest a batch waits for a lookup (from when that lookup started)."""
    request_timeout: float = 5.0
    """One lookup's timeout; a lookup still running after `deadline` finishes in background."""
    refresh_after: float = 10.0
    """Least seconds between two refreshes of one object (an Event names a newer version)."""
    max_age: float = 600.0
    """Entries older than this are fetched again."""
    retry_after: float = 10.0
    """After a failed lookup, seconds before that object is asked for again."""
    discovery_refresh: float = 600.0
    """Seconds between discovery refreshes of one group version."""


def ref_key(ref: Mapping[str, Any]) -> str:
    """Cache key of a reference: its uid, else apiVersion/kind/namespace/name."""
    uid = ref.get("uid")
    if uid:
        return str(uid)
    return f"{ref.get('apiVersion', '')}/{ref.get('kind', '')}/{ref.get('namespace', '')}/" \
           f"{ref.get('name', '')}"


class Enricher:
    """One per process, shared by every receiver (one cache, one budget)."""

    def __init__(self, client: ObjectClient, *, settings: EnrichSettings,
                 registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic,
                 caches: MetadataCaches | None = None) -> None:
        self.settings = settings
        self.caches = caches
        self._client = client
        self._clock = clock
        self._cache = ObjectCache(size=settings.cache_size, refresh_after=settings.refresh_after,
                                  max_age=settings.max_age, retry_after=settings.retry_after)
        self._budget = LookupBudget(qps=settings.qps, burst=settings.burst, clock=clock)
        self.resources = ResourceMap(client, refresh=settings.discovery_refresh,
                                     retry_after=settings.retry_after, clock=clock)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._started_at: dict[str, float] = {}  # key of an in-flight lookup -> its start
        self._refused: dict[str, None] = {}  # keys the budget turned away, for the skip reason
        self.skipped = Counter("eventpipe_enrich_skipped", "Events delivered without "
                               "enrichment, by reason.", ["reason"], registry=registry)
        self.lookups = Counter("eventpipe_enrich_lookups", "Object lookups made, by result.",
                               ["result"], registry=registry)
        enriched = Counter("eventpipe_enrich_enriched", "Events delivered with enrichment, by "
                           "where the object came from.", ["source"], registry=registry)
        self._from_watch = enriched.labels("watch")
        self._from_lookup = enriched.labels("lookup")
        self._watch_hits = self._lookup_hits = 0  # added to the counter once per batch
        self._skip_counters: dict[str, Any] = {}
        self._entries = Gauge("eventpipe_enrich_cache_entries", "Objects in the enrichment "
                              "cache.", registry=registry)

    async def prefetch(self, events: Iterable[Event], *, wait_sync: bool = False) -> None:
        """Start the lookups `events` need and wait for them (and for those another receiver
        started for the same objects) until `deadline` seconds after each began. Objects of
        watched kinds: with `wait_sync`, wait for the caches to sync (startup); wait for a cache
        behind the resourceVersion an Event names, up to `deadline`."""
        refs = [found[1] for found in map(reference, events) if found is not None]
        await self.prefetch_references(refs, wait_sync=wait_sync)

    async def prefetch_references(self, refs: Sequence[Mapping[str, Any]], *,
                                  wait_sync: bool = False) -> None:
        """`prefetch` for the Events' involved-object references."""
        now = self._clock()
        started: dict[str, asyncio.Task[None]] = {}
        behind: dict[MetadataInformer, int] = {}
        unsynced = False
        caches = self.caches
        for ref in refs:
            informer = self._informer(ref)
            if informer is not None and not informer.synced.is_set():
                unsynced = True
                if wait_sync and caches is not None and caches.waiting_allowed:
                    continue  # wait for the sync below, then the cache answers
                informer = None  # a cache that cannot sync (API errors): GET meanwhile
            if informer is not None and caches is not None:
                rv = str(ref.get("resourceVersion") or "")
                if rv.isdecimal() and not informer.reached(int(rv)):
                    # The Event names a version the cache has not seen (new labels, a node).
                    behind[informer] = max(behind.get(informer, 0), int(rv))
                    continue
                if caches.lookup(ref, informer) is not None:
                    continue
                # Not cached: deleted before the cache listed it (a 404 marks it deleted), or
                # refused by a full cache: the GETs below, once per object.
            key = ref_key(ref)
            if key in started:
                continue
            running = self._inflight.get(key)
            if running is not None:
                started[key] = running
                continue
            if self._cache.wants_fetch(key, str(ref.get("resourceVersion") or ""), now):
                task = self._start(key, ref, str(ref.get("namespace") or ""), 0)
                if task is not None:
                    started[key] = task
                continue
            self._owners_missing(key, ref, now, started)
        if unsynced and wait_sync and caches is not None and caches.waiting_allowed:
            await caches.wait_settled()
            await self.prefetch_references(refs)  # still not synced now: the GET path
        if behind:
            await asyncio.gather(*(i.wait_past(rv, self.settings.deadline)
                                   for i, rv in behind.items()))
        if started:
            # A lookup still running from an earlier batch had its deadline: not again.
            until = max(self._started_at.get(k, now) for k in started) + self.settings.deadline
            await asyncio.wait(started.values(), timeout=max(0.0, until - self._clock()))

    def enrich(self, event: dict[str, Any], *, count: bool = True) -> dict[str, Any]:
        """`event` with what the cache knows added (an `EnrichedEvent`), or `event` itself."""
        found = reference(event)
        if found is None:
            return event
        section, ref = found
        informer = self._informer(ref)
        if informer is not None and not informer.synced.is_set():
            informer = None  # not synced (yet): whatever the GET cache has
        caches = self.caches
        if informer is not None and caches is not None:
            info = caches.lookup(ref, informer)
            if info is not None:
                if count:
                    self._watch_hits += 1
                return apply(event, section, ref, info, self._owner, caches.store.generation)
        key = ref_key(ref)
        info = self._cache.get(key)
        if info is None:
            if count:
                reason = self._why(key)
                counter = self._skip_counters.get(reason)
                if counter is None:  # labels() locks and hashes: resolved once per reason
                    counter = self._skip_counters[reason] = self.skipped.labels(reason)
                counter.inc()
            return event
        if count:
            self._lookup_hits += 1
        return apply(event, section, ref, info, self._owner)

    def enrich_served(self, served: ServedReference, body: bytes, *,
                      ready: bool = False) -> bytes | None:
        """The served bytes `body` of an Event with what the metadata caches know spliced into
        its reference (eventpipe.enrich.served): the bytes `enrich` and the line encoder give,
        without parsing the Event. `body` itself when there is nothing to add; None when the
        object is not in a synced metadata cache or the reference already has a key enrichment
        adds (the caller then parses the Event and calls `enrich`). With `ready`, also None
        when the cache has not reached the version the Event names (`prefetch` waits)."""
        caches = self.caches
        ref = served[2]
        informer = self._informer(ref)
        if informer is None or caches is None or not informer.synced.is_set():
            return None
        if ready:
            rv = ref.get("resourceVersion")
            if rv and not informer.reached_version(rv):
                return None
        info = caches.lookup(ref, informer)
        if info is None:
            return None
        add, members = cached_additions(info, self._owner, caches.store.generation)
        if members is None:
            self._watch_hits += 1
            return body
        if not ref.keys().isdisjoint(add):
            return None
        self._watch_hits += 1
        return splice_at(body, served[1], members)

    def _informer(self, ref: Mapping[str, Any]) -> MetadataInformer | None:
        """The metadata cache for this reference's object, unless none covers it or its kind
        is degraded (403, not served): then GETs."""
        caches = self.caches
        if caches is None:
            return None
        api_version, kind, namespace = ref.get("apiVersion"), ref.get("kind"), ref.get("namespace")
        informer = caches.informer(api_version if type(api_version) is str else "v1",
                                   kind if type(kind) is str else "",
                                   namespace if type(namespace) is str else "")
        return None if informer is None or informer.degraded else informer

    def _owner(self, uid: str) -> ObjectInfo | None:
        """An owner by uid: from the metadata caches, else the GET cache."""
        caches = self.caches
        info = caches.store.get(uid) if caches is not None else None
        return info if info is not None else self._cache.get(uid)

    def flush_counts(self) -> None:
        """Add the enriched events counted since the last call to the counter (per event a
        labelled counter takes a lock; a batch adds them once)."""
        if self._watch_hits:
            self._from_watch.inc(self._watch_hits)
            self._watch_hits = 0
        if self._lookup_hits:
            self._from_lookup.inc(self._lookup_hits)
            self._lookup_hits = 0

    async def close(self) -> None:
        """Cancel lookups still running (at shutdown, before the API client closes)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _why(self, key: str) -> str:
        if key in self._inflight:
            return "timeout"
        if self._cache.failing(key, self._clock()):
            return "api_error"
        return "rate_limited" if key in self._refused else "uncached"

    def _owners_missing(self, key: str, ref: Mapping[str, Any], now: float,
                        started: dict[str, asyncio.Task[None]]) -> None:
        """A cached object whose owner chain is not cached yet (the budget ran out while
        following it, or the owner was evicted): continue the chain."""
        namespace = str(ref.get("namespace") or "")
        info = self._cache.get(key)
        for _ in range(_MAX_CHAIN):
            owner = info.controller if info is not None and not info.deleted else None
            if owner is None:
                return
            owner_key = ref_key(owner)
            running = self._inflight.get(owner_key)
            if running is not None:
                started[owner_key] = running
                return
            if owner_key in started:
                return
            if self._cache.wants_fetch(owner_key, "", now):
                task = self._start(owner_key, owner, namespace, 1)
                if task is not None:
                    started[owner_key] = task
                return
            info = self._cache.get(owner_key)

    def _start(self, key: str, ref: Mapping[str, Any], namespace: str, depth: int
               ) -> asyncio.Task[None] | None:
        """Start one lookup if the budget allows (an unserved kind costs nothing)."""
        api_version, kind = str(ref.get("apiVersion") or "v1"), str(ref.get("kind") or "")
        if self.resources.served(api_version, kind) is False:
            self._put(key, ObjectInfo(uid="", resource_version="", kind=kind, name="",
                                      served=False, fetched_at=self._clock()))
            return None
        if not self._budget.try_take():
            if len(self._refused) >= self._cache.size:
                self._refused.clear()
            self._refused[key] = None
            return None
        self._refused.pop(key, None)
        task = asyncio.create_task(self._lookup(key, ref, namespace, depth),
                                   name=f"enrich {kind}")
        self._inflight[key] = task
        self._started_at[key] = self._clock()
        task.add_done_callback(lambda _t: self._done(key))
        return task

    async def _lookup(self, key: str, ref: Mapping[str, Any], namespace: str,
                      depth: int) -> None:
        """Fetch one object, cache what enrichment needs, then follow its controller."""
        api_version, kind = str(ref.get("apiVersion") or "v1"), str(ref.get("kind") or "")
        name, uid = str(ref.get("name") or ""), str(ref.get("uid") or "")
        try:
            path = await self.resources.path(api_version, kind, namespace, name)
            if path is None:
                self._put(key, ObjectInfo(uid="", resource_version="", kind=kind, name=name,
                                          served=False, fetched_at=self._clock()))
                return
            status, body = await self._client.get(path)
        except Exception as exc:  # connection error or timeout: like a 5xx
            self._failed(key, kind, repr(exc))
            return
        now = self._clock()
        if status == 404:
            self.lookups.labels("not_found").inc()
            self._put(key, ObjectInfo(uid=uid, resource_version="", kind=kind, name=name,
                                      deleted=True, fetched_at=now))
            return
        if not isinstance(body, dict):
            self._failed(key, kind, f"HTTP {status}")
            return
        self.lookups.labels("found").inc()
        info = object_info(body, fetched_at=now)
        if uid and uid != name and info.uid and info.uid != uid:
            # The name now belongs to a new object: the one the Event is about is gone.
            self._put(info.uid, info)
            info = ObjectInfo(uid=uid, resource_version="", kind=kind, name=name,
                              deleted=True, fetched_at=now)
        self._put(key, info)
        owner = info.controller
        if owner is not None and depth < _MAX_CHAIN:
            owner_key = ref_key(owner)
            running = self._inflight.get(owner_key)
            if running is None and self._cache.wants_fetch(owner_key, "", now):
                running = self._start(owner_key, owner, namespace, depth + 1)
            if running is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(running)

    def _done(self, key: str) -> None:
        self._inflight.pop(key, None)
        self._started_at.pop(key, None)

    def _put(self, key: str, info: ObjectInfo) -> None:
        self._cache.put(key, info)
        self._entries.set(len(self._cache))

    def _failed(self, key: str, kind: str, error: str) -> None:
        self.lookups.labels("error").inc()
        self._cache.failed(key, self._clock())
        log.debug("lookup failed", extra={"kind": kind, "error": error})
