"""One metadata cache feed: list + watch of one kind (in one namespace, or all) into the store.

The protocol is the Event watch's (docs/architecture.md), asked for metadata only: a paged
LIST as `PartialObjectMetadataList` (Pods: a `Table` with `includeObject=Metadata`, whose Node
column is the pod's node), then WATCH from the list's resourceVersion with bookmarks and a
jittered timeout. 410 (HTTP or in-stream) relists; objects the relist no longer returns were
deleted meanwhile and become tombstones. 429/5xx/connection errors back off and resume from the
last resourceVersion; the cache stays usable meanwhile. 403 (RBAC) and 404 (kind not served)
degrade the kind: logged once, counted, retried at the backoff cap, while events about it use
rate-limited GETs. Nothing here is on the per-event path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from eventpipe.core.backoff import exponential_backoff, watch_timeout
from eventpipe.enrich.apply import ObjectInfo
from eventpipe.enrich.client import StreamClient
from eventpipe.enrich.kinds import METADATA_LIST, METADATA_OBJECT, NODE_COLUMN, TABLE, WatchedKind
from eventpipe.enrich.metastore import MetadataStore
from eventpipe.watch.status import ApiError, ResourceGone, check_status
from eventpipe.watch.watcher import WatchSettings

log = logging.getLogger("eventpipe.enrich")
READ_BYTES = 256 * 1024
STALL_PAUSE = 10.0
"""Seconds without waits after a wait for this cache timed out (see `wait_past`)."""


InformerSettings = WatchSettings
"""The Event watch's settings (page size, timeout range, backoff) serve the informers too."""


class MetadataInformer:
    """Keeps `store` current for one kind and namespace; `run()` until cancelled."""

    def __init__(self, client: StreamClient, kind: WatchedKind, namespace: str,
                 store: MetadataStore, *, settings: InformerSettings,
                 on_error: Callable[[str, str], None] = lambda kind, reason: None,
                 on_request: Callable[[str, str], None] = lambda kind, verb: None,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self._client = client
        self.kind = kind
        self.namespace = namespace if kind.namespaced else ""
        self._store = store
        self._settings = settings
        self._on_error = on_error
        self._on_request = on_request
        self._clock = clock
        self._rng = rng or random.Random()
        self.synced = asyncio.Event()
        """Set once the first LIST is stored; stays set (a watch failure keeps the cache)."""
        self.degraded = ""
        """Why this kind is not cached ("forbidden: ...", "not served: ..."); "" when fine."""
        self.rv = ""
        """The resourceVersion the cache has reached."""
        self._rv_number = -1  # `rv` as a number, for `reached` (per event)
        self.relists = 0
        self._moved = asyncio.Event()
        self._stalled_until = 0.0
        self._node_column: int | None = None

    @property
    def path(self) -> str:
        """The collection listed and watched."""
        return self.kind.collection_path(self.namespace)

    @property
    def settled(self) -> bool:
        """Synced, or known not to be cacheable (nothing to wait for)."""
        return self.synced.is_set() or bool(self.degraded)

    @property
    def status(self) -> str:
        """For /readyz: "synced", "syncing", or why the kind is degraded."""
        return self.degraded or ("synced" if self.synced.is_set() else "syncing")

    async def wait_past(self, rv: int, within: float) -> bool:
        """Wait until the cache has reached resourceVersion `rv`, at most `within` seconds.
        After a wait that timed out, later calls return at once for `STALL_PAUSE` seconds: a
        cache that does not catch up (a stuck watch, references to versions it never sees)
        must not cost every batch the full wait."""
        now = self._clock()
        if now < self._stalled_until:
            return _reached(self.rv, rv)
        deadline = now + within
        while not _reached(self.rv, rv):
            left = deadline - self._clock()
            if left <= 0:
                self._stalled_until = self._clock() + STALL_PAUSE
                return False
            moved = self._moved
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), left)
        return True

    def reached(self, rv: int) -> bool:
        """True when the cache has seen everything up to resourceVersion `rv`."""
        return self._rv_number >= rv

    def reached_version(self, rv: object) -> bool:
        """`reached` for a reference's resourceVersion as served (a string of digits; any
        other value names no version to wait for)."""
        text = str(rv)
        return not text.isdecimal() or self._rv_number >= int(text)

    async def run(self) -> None:
        """List, then watch, forever (until cancelled)."""
        delays = self._backoff()
        rv = ""
        while True:
            try:
                if not rv:
                    rv = await self._relist()
                before = rv
                rv = await self._watch(rv)
                if rv != before:
                    delays = self._backoff()
            except ResourceGone:
                self._on_error(self.kind.kind, "gone")
                rv = ""
            except (ApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                delay = self._failed(exc, delays)
                await asyncio.sleep(delay)

    def _failed(self, exc: BaseException, delays: Any) -> float:
        status = exc.status if isinstance(exc, ApiError) else 0
        self._on_error(self.kind.kind, f"http_{status}" if status else type(exc).__name__)
        delay = float(next(delays))
        if status in (403, 404):
            reason = (f"forbidden: {self.kind.forbidden_reason(self.namespace)}" if status == 403
                      else f"not served: the API server has no {self.path}")
            if not self.degraded:  # a kind an API server does not serve is no error of ours
                log.log(logging.ERROR if status == 403 else logging.WARNING, reason, extra={
                    "kind": self.kind.kind, "path": self.path, "error": str(exc)})
            self.degraded = reason
            return self._settings.backoff_max
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        log.warning("metadata watch failed, retrying", extra={
            "kind": self.kind.kind, "path": self.path, "error": str(exc),
            "delay": round(delay, 2)})
        return delay

    def _backoff(self) -> Any:
        return exponential_backoff(initial=self._settings.backoff_initial,
                                   maximum=self._settings.backoff_max, rng=self._rng)

    def _recovered(self) -> None:
        if self.degraded:
            log.info("metadata cache allowed again", extra={"kind": self.kind.kind,
                                                           "path": self.path})
            self.degraded = ""

    async def _relist(self) -> str:
        """Paged LIST into the store; deletes what it no longer returns; its resourceVersion."""
        seen: set[str] = set()
        token = ""
        list_rv = ""
        accept = TABLE if self.kind.as_table else METADATA_LIST
        while True:
            query = [("limit", str(self._settings.page_size))]
            if self.kind.as_table:
                query.append(("includeObject", "Metadata"))
            if token:
                query.append(("continue", token))
            self._on_request(self.kind.kind, "list")
            resp = await self._client.open(self.path, query, accept=accept, request_timeout=60)
            try:
                await check_status(resp)
                page = orjson.loads(await resp.read())
            finally:
                resp.release()
            meta = page.get("metadata") or {}
            list_rv = list_rv or str(meta.get("resourceVersion") or "")
            now = self._clock()
            for info in self._infos(page, now):
                seen.add(info.uid)
                self._store.upsert(info)
            token = str(meta.get("continue") or "")
            if not token:
                break
        self._store.replace(self.kind.kind, self.namespace, seen, self._clock())
        self.relists += 1
        self._recovered()
        self._advance(list_rv)
        self.synced.set()
        return list_rv

    async def _watch(self, rv: str) -> str:
        """Apply changes after `rv` until the stream ends; the resourceVersion reached."""
        timeout = watch_timeout(self._settings.timeout_min, self._settings.timeout_max,
                                self._rng)
        query = [("watch", "true"), ("resourceVersion", rv), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", str(timeout))]
        if self.kind.as_table:
            query.append(("includeObject", "Metadata"))
        self._on_request(self.kind.kind, "watch")
        resp = await self._client.open(
            self.path, query, accept=TABLE if self.kind.as_table else METADATA_OBJECT,
            request_timeout=aiohttp.ClientTimeout(total=timeout + 60, sock_connect=15))
        try:
            await check_status(resp)
            self._recovered()
            pending = b""
            async for chunk in resp.content.iter_chunked(READ_BYTES):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        rv = self._apply(orjson.loads(line), rv)
                self._advance(rv)
            if pending.strip():
                rv = self._apply(orjson.loads(pending), rv)
        finally:
            resp.release()
        self._advance(rv)
        return rv

    def _apply(self, message: dict[str, Any], rv: str) -> str:
        kind, obj = message.get("type"), message.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise ResourceGone(str(obj.get("message", "")))
            raise ApiError(code if isinstance(code, int) else 0, str(obj.get("message", "")))
        now = self._clock()
        infos = self._infos(obj, now)
        if kind == "BOOKMARK" or not infos:
            return _object_rv(obj) or rv
        for info in infos:
            if kind == "DELETED":
                self._store.delete(info.uid, now, info)
            else:
                self._store.upsert(info)
        return infos[-1].resource_version or rv

    def _infos(self, obj: dict[str, Any], now: float) -> list[ObjectInfo]:
        """The objects in a list page, a Table, or one PartialObjectMetadata."""
        if obj.get("kind") == "Table" or "rows" in obj:
            columns = obj.get("columnDefinitions")
            if columns:  # a watch sends them with its first event only
                names = [c.get("name") for c in columns]
                self._node_column = names.index(NODE_COLUMN) if NODE_COLUMN in names else None
            out = []
            for row in obj.get("rows") or ():
                cells = row.get("cells") or ()
                node = None
                column = self._node_column
                if column is not None and column < len(cells):
                    node = cells[column]
                info = self._info(row.get("object") or {}, now, node)
                if info is not None:
                    out.append(info)
            return out
        items = obj.get("items")
        if items is not None:
            return [i for i in (self._info(item, now, None) for item in items) if i is not None]
        info = self._info(obj, now, None)
        return [] if info is None else [info]

    def _info(self, obj: dict[str, Any], now: float, node: object) -> ObjectInfo | None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None  # a bookmark's object carries only its resourceVersion
        # Namespaces and node names repeat across thousands of objects: one string each.
        return ObjectInfo(
            uid=uid, resource_version=str(meta.get("resourceVersion") or ""),
            kind=self.kind.kind, name=str(meta.get("name") or ""),
            namespace=sys.intern(str(meta.get("namespace") or "")),
            labels=meta.get("labels") or None, annotations=meta.get("annotations") or None,
            owner_references=meta.get("ownerReferences") or None,
            node=sys.intern(node) if isinstance(node, str) and node and node != "<none>"
            else None, fetched_at=now)

    def _advance(self, rv: str) -> None:
        if rv and rv != self.rv:
            self.rv = rv
            self._rv_number = int(rv) if rv.isdecimal() else -1
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()


def _object_rv(obj: dict[str, Any]) -> str:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if not rv:
        for row in obj.get("rows") or ():
            rv = ((row.get("object") or {}).get("metadata") or {}).get("resourceVersion")
    return str(rv or "")


def _reached(have: str, want: int) -> bool:
    return have.isdecimal() and int(have) >= want
