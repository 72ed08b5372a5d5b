"""The process's metadata caches: one informer per watched kind (per namespace in namespaced
mode), one store, the startup wait, and what readiness and /metrics say about them.

Cluster-scoped kinds (Nodes) are watched only when eventpipe watches all namespaces: namespaced
mode has no cluster-wide RBAC (the chart grants none), so Node events there use GETs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from eventpipe.enrich.apply import ObjectInfo
from eventpipe.enrich.client import StreamClient
from eventpipe.enrich.config import EnrichConfig
from eventpipe.enrich.informer import InformerSettings, MetadataInformer
from eventpipe.enrich.kinds import KINDS, group_of
from eventpipe.enrich.metastore import MetadataStore

log = logging.getLogger("eventpipe.enrich")
EXPIRE_EVERY = 10.0
_UNSEEN: Any = object()


class MetadataCaches:
    """Informers and their store; `start()` once this replica watches, `close()` at the end."""

    def __init__(self, client: StreamClient, config: EnrichConfig, *,
                 namespaces: Sequence[str], settings: InformerSettings,
                 registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store = MetadataStore(max_objects=config.max_objects,
                                   tombstone_ttl=config.tombstone_ttl)
        self._clock = clock
        self._sync_timeout = config.sync_timeout
        self._sync_deadline: float | None = None
        self._errors = Counter("eventpipe_enrich_cache_errors", "Failed list/watch requests of "
                               "the metadata caches, by kind and reason.", ["kind", "reason"],
                               registry=registry)
        requests = Counter("eventpipe_enrich_cache_requests", "List and watch requests of the "
                           "metadata caches (O(kinds), not per event).", ["kind", "verb"],
                           registry=registry)
        self._count_request = lambda kind, verb: requests.labels(kind, verb).inc()
        self.informers: list[MetadataInformer] = []
        self._by_kind: dict[str, dict[str, MetadataInformer]] = {}
        for name in config.watch_kinds:
            kind = KINDS[name]
            if not kind.namespaced and any(namespaces):
                continue
            for namespace in (namespaces if kind.namespaced else [""]):
                informer = MetadataInformer(client, kind, namespace, self.store,
                                            settings=settings, on_error=self._error,
                                            on_request=self._count_request, clock=clock)
                self.informers.append(informer)
                self._by_kind.setdefault(name, {})[informer.namespace] = informer
        self._index: dict[tuple[str, str], dict[str, MetadataInformer] | None] = {}
        self._tasks: list[asyncio.Task[None]] = []
        registry.register(_CacheCollector(self))

    def start(self, *, on_settled: Callable[[], None] | None = None) -> None:
        """Start every informer (and tombstone expiry); the startup wait begins now.
        `on_settled` is called once, when every informer has first synced or degraded."""
        self._sync_deadline = self._clock() + self._sync_timeout
        self._tasks = [asyncio.create_task(i.run(), name=f"metadata {i.path}")
                       for i in self.informers]
        if self.informers:
            self._tasks.append(asyncio.create_task(self._expire(), name="metadata expiry"))
            if on_settled is not None:
                self._tasks.append(asyncio.create_task(self._when_settled(on_settled),
                                                       name="metadata settled"))

    async def close(self) -> None:
        """Stop the informers."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def informer(self, api_version: str, kind: str, namespace: str) -> MetadataInformer | None:
        """The informer that covers objects of this kind in `namespace`, if any (per event:
        one dict lookup for the (apiVersion, kind) pair, memoised)."""
        key = (api_version, kind)
        by_namespace: dict[str, MetadataInformer] | None = self._index.get(key, _UNSEEN)
        if by_namespace is _UNSEEN:
            by_namespace = self._by_kind.get(kind)
            if by_namespace is not None and group_of(api_version) != KINDS[kind].group:
                by_namespace = None
            if len(self._index) > 1024:
                self._index.clear()  # bounded: references name few distinct kinds
            self._index[key] = by_namespace
        if by_namespace is None:
            return None
        return by_namespace.get("") or by_namespace.get(namespace)

    def lookup(self, ref: Mapping[str, Any], informer: MetadataInformer) -> ObjectInfo | None:
        """The cached object an Event reference names: by uid, else by name when the reference
        has no real uid (the kubelet's Node references use the name)."""
        uid = ref.get("uid") or ""
        info = self.store.get(uid) if uid else None
        if info is not None:
            return info
        name = ref.get("name") or ""
        if uid and uid != name:
            return None
        kind = informer.kind
        namespace = str(ref.get("namespace") or "") if kind.namespaced else ""
        return self.store.by_name(kind.kind, namespace, name)

    @property
    def waiting_allowed(self) -> bool:
        """True until `syncTimeout` after start: events may still wait for a sync."""
        return self._sync_deadline is not None and self._clock() < self._sync_deadline

    @property
    def settled(self) -> bool:
        """Every informer synced or degraded."""
        return all(i.settled for i in self.informers)

    async def wait_settled(self) -> None:
        """Wait, within the startup budget, until every informer has synced or degraded (owner
        chains cross kinds, and the informers sync together)."""
        if self._sync_deadline is None:
            return
        pending = [i for i in self.informers if not i.settled]
        while pending and self.waiting_allowed:
            waits = [asyncio.ensure_future(i.synced.wait()) for i in pending]
            try:
                await asyncio.wait(waits, timeout=min(1.0, self._sync_deadline - self._clock()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            pending = [i for i in pending if not i.settled]

    async def _when_settled(self, callback: Callable[[], None]) -> None:
        while not self.settled:  # a kind that degrades (403) sets no event: look each second
            waits = [asyncio.ensure_future(i.synced.wait()) for i in self.informers
                     if not i.settled]
            try:
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.ALL_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        callback()

    def status(self) -> dict[str, str]:
        """Per informer path: "synced", "syncing" or why it is degraded (for /readyz)."""
        return {i.path: i.status for i in self.informers}

    def _error(self, kind: str, reason: str) -> None:
        self._errors.labels(kind, reason).inc()

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY)
            with contextlib.suppress(Exception):
                self.store.expire(self._clock())


class _CacheCollector(Collector):
    """Cache sizes and sync state, read from the store at scrape time (nothing per event)."""

    def __init__(self, caches: MetadataCaches) -> None:
        self._caches = caches

    def collect(self) -> Iterator[Metric]:
        store = self._caches.store
        objects = GaugeMetricFamily("eventpipe_enrich_cache_objects", "Live objects in the "
                                    "metadata caches, by kind.", labels=["kind"])
        for kind in sorted({i.kind.kind for i in self._caches.informers}):
            objects.add_metric([kind], store.per_kind.get(kind, 0))
        yield objects
        yield GaugeMetricFamily("eventpipe_enrich_cache_tombstones", "Deleted objects whose "
                                "metadata is still kept.", value=store.tombstones)
        synced = GaugeMetricFamily("eventpipe_enrich_cache_synced", "1 when the metadata cache "
                                   "of a kind and namespace has synced.",
                                   labels=["kind", "namespace"])
        for informer in self._caches.informers:
            synced.add_metric([informer.kind.kind, informer.namespace or "*"],
                              1.0 if informer.synced.is_set() and not informer.degraded else 0)
        yield synced
        yield CounterMetricFamily("eventpipe_enrich_cache_full", "Objects not cached because "
                                  "enrich.maxObjects was reached (looked up by GET instead).",
                                  value=store.refused)
