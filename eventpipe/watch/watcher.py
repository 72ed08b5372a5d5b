"""List then watch Events for one stream (an API group and a namespace or all), forever.

The protocol (docs/architecture.md): paged LIST, then WATCH from the list's resourceVersion with
bookmarks and a jittered timeout. The resume point is the resourceVersion of the last item the
writer commits, so a restart picks up exactly where the spool ends. 410 Gone, as HTTP status
or as an in-stream ERROR, and an expired continue token mean the resume point is too old: relist
(the spool skips versions it already has). 429/5xx/connection errors back off and re-watch
without relisting; a clean end of stream re-watches at once. 403 (RBAC) is retried with
the same backoff, since a Role may be granted later, but it is an error that names the namespace
and the missing permission: logged once when the stream becomes forbidden (not on every retry),
shown by /readyz as `forbidden: ...`, and logged again when the stream is allowed.

Watch lines are parsed as plain dicts with orjson: no model objects on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from eventpipe.core.backoff import exponential_backoff, watch_timeout
from eventpipe.core.jsonbytes import dumps_kept
from eventpipe.metrics import Metrics
from eventpipe.spool.rows import NewRecord
from eventpipe.spool.writer import Item, SpoolWriter
from eventpipe.watch.api import EventsApi, forbidden_reason
from eventpipe.watch.normalize import MalformedEvent, to_record
from eventpipe.watch.status import ApiError, ResourceGone, check_status

__all__ = ["ApiError", "ResourceGone", "WatchSettings", "Watcher"]

log = logging.getLogger("eventpipe.watcher")

WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})
"""The watch notification types; a line of any other `type` (or a non-string one) is a
rejected line: it must not move the resume point as a BOOKMARK would."""


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How one watcher talks to the API server."""

    page_size: int = 500
    """LIST page size (`limit`)."""
    timeout_min: float = 300.0
    """Lower bound of the jittered watch `timeoutSeconds`."""
    timeout_max: float = 600.0
    """Upper bound (exclusive) of the jittered watch `timeoutSeconds`."""
    backoff_initial: float = 0.8
    """First delay after a failed request."""
    backoff_max: float = 30.0
    """Largest delay between failed requests."""
    read_bytes: int = 256 * 1024
    """Most bytes taken from the watch stream per read (`watch.readBufferSize`)."""


class Watcher:
    """One list/watch loop feeding a `SpoolWriter`."""

    def __init__(self, *, api: EventsApi, stream: str, writer: SpoolWriter,
                 settings: WatchSettings, metrics: Metrics,
                 rng: random.Random | None = None) -> None:
        self._api = api
        self.stream = stream
        self._writer = writer
        self._settings = settings
        self._metrics = metrics
        self._rng = rng or random.Random()
        self.established = asyncio.Event()
        """Set once a watch stream is open; readiness reports it."""
        self.last_error = ""
        """Why the last request failed, for /readyz."""
        self.forbidden = False
        """True from a 403 until a watch is established again (RBAC allowed it)."""
        self._rv: str | None = None
        self._gap_from: tuple[str, int] | None = None
        """(refused resume point, spool head before the relist) while a gap is open."""
        self._event_counters: dict[object, Any] = {}
        self._types_seen: dict[str, int] = {}

    @property
    def namespace(self) -> str:
        """The namespace this stream watches; "" for all namespaces."""
        return self._api.namespace

    @property
    def status(self) -> str:
        """For /readyz: "watching", "connecting", or why not (`forbidden: cannot ...`)."""
        if self.established.is_set():
            return "watching"
        return self.last_error or "connecting"

    async def run(self, resume_rv: str | None) -> None:
        """Run until cancelled, starting from a saved resume point or a fresh list."""
        self._rv = resume_rv
        delays = self._new_backoff()
        while True:
            started_from = self._rv
            try:
                if self._rv is None:
                    self._rv = await self._relist_and_account()
                await self._watch(self._rv)
                delays = self._new_backoff()  # a stream that ended cleanly resets the backoff
                self._metrics.watch_restarts.labels(self.stream, "timeout").inc()
            except ResourceGone as exc:
                log.info("resume point expired, relisting", extra={"stream": self.stream,
                                                                  "error": str(exc)})
                self._metrics.watch_relists.labels(self.stream, "gone").inc()
                if self._gap_from is None and self._rv is not None:
                    # A relist refused in turn (an expired continue token) keeps the gap open
                    # from the first refused resume point.
                    self._gap_from = (self._rv, await self._writer.committed_head())
                self._rv = None
            except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
                self._not_established(exc)
                if self._rv != started_from:
                    # The stream delivered before it broke: the server is fine, so reconnect
                    # promptly from where it got to instead of backing off further.
                    delays = self._new_backoff()
                reason = (f"http_{exc.status}" if isinstance(exc, ApiError)
                          else type(exc).__name__)
                self._metrics.watch_restarts.labels(self.stream, reason).inc()
                delay = next(delays)
                if isinstance(exc, ApiError) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                if not (isinstance(exc, ApiError) and exc.status == 403):
                    log.warning("watch failed, retrying", extra={
                        "stream": self.stream, "error": str(exc), "delay": round(delay, 2)})
                await asyncio.sleep(delay)

    def _new_backoff(self) -> Any:
        return exponential_backoff(initial=self._settings.backoff_initial,
                                   maximum=self._settings.backoff_max, rng=self._rng)

    def _not_established(self, exc: BaseException) -> None:
        self.established.clear()
        self._metrics.watch_up.labels(self.stream).set(0)
        if not (isinstance(exc, ApiError) and exc.status == 403):
            self.last_error = str(exc) or type(exc).__name__
            return
        reason = forbidden_reason(self._api.api_group, self._api.namespace)
        self.last_error = f"forbidden: {reason} ({exc})"
        if self.forbidden:  # still forbidden: the retry is counted, not logged again
            log.debug("watch still forbidden, retrying", extra={"stream": self.stream})
            return
        self.forbidden = True
        log.error(reason, extra={"stream": self.stream, "namespace": self._api.namespace or "*",
                                 "error": str(exc)})

    def _established(self) -> None:
        self.established.set()
        self._metrics.watch_up.labels(self.stream).set(1)
        self.last_error = ""
        if self.forbidden:
            self.forbidden = False
            log.info("RBAC allows the watch now; stream established", extra={
                "stream": self.stream, "namespace": self._api.namespace or "*"})

    async def _relist_and_account(self) -> str:
        """`_relist`; after a 410, record the gap it closes (eventpipe.spool.gaps)."""
        list_rv = await self._relist()
        if self._gap_from is None:
            return list_rv
        from_rv, after_seq = self._gap_from
        self._gap_from = None
        try:
            gap = await self._writer.record_gap(stream=self.stream, namespace=self.namespace,
                                                from_rv=from_rv, to_rv=list_rv,
                                                after_seq=after_seq)
        except Exception:  # accounting must not stop the watch; the log says it is missing
            log.exception("watch gap not recorded", extra={
                "stream": self.stream, "from_resource_version": from_rv,
                "to_resource_version": list_rv})
            return list_rv
        self._metrics.watch_gaps.labels(self.stream).inc()
        self._metrics.occurrences_missed.labels(self.stream).inc(gap.occurrences_missed)
        log.warning("watch gap recorded", extra={
            "stream": self.stream, "from_resource_version": from_rv,
            "to_resource_version": list_rv, "relisted_versions": gap.relisted_versions,
            "occurrences_missed": gap.occurrences_missed})
        return list_rv

    async def _relist(self) -> str:
        """Paged LIST of every current Event; returns the list's resourceVersion.

        The next page is requested as soon as this page's continue token is known, so the
        API server prepares it while this page is stored: a relist of 150,000 Events is
        300 pages, and waiting for each in turn left both sides idle half the time. At most
        two pages are held at once."""
        list_rv = ""
        fetching = asyncio.ensure_future(self._list_page(None))
        try:
            while True:
                page = await fetching
                meta = page.get("metadata") or {}
                if not list_rv:
                    list_rv = meta.get("resourceVersion") or ""
                token = meta.get("continue") or None
                if token:
                    fetching = asyncio.ensure_future(self._list_page(token))
                item_type = {"kind": str(page.get("kind", "EventList")).removesuffix("List"),
                             "apiVersion": page.get("apiVersion", "v1")}
                for obj in page.get("items") or ():
                    if isinstance(obj, dict) and "kind" not in obj:
                        # List items omit their type; watch objects carry it. Store one shape.
                        obj = {**item_type, **obj}
                    await self._store(obj)
                del page
                if not token:
                    break
        finally:
            if not fetching.done():
                fetching.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetching
        # The list's resourceVersion becomes the resume point only after every item before it.
        await self._writer.put(self.stream, list_rv, None)
        return list_rv

    async def _list_page(self, token: str | None) -> dict[str, Any]:
        """One LIST page, parsed; errors (410 for an expired token, 5xx) raise as for any
        request."""
        params: dict[str, Any] = {"limit": self._settings.page_size}
        if token:
            params["_continue"] = token
        resp = await self._api.request(**params)
        try:
            await check_status(resp)
            page: dict[str, Any] = orjson.loads(await resp.read())
        finally:
            resp.release()
        return page

    async def _watch(self, rv: str) -> None:
        """Stream changes after `rv` until the server ends the stream; `self._rv` follows the
        last resourceVersion handed to the writer, so a failure resumes right there."""
        timeout = watch_timeout(self._settings.timeout_min, self._settings.timeout_max,
                                self._rng)
        resp = await self._api.request(
            watch=True, resource_version=rv, allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _request_timeout=aiohttp.ClientTimeout(total=timeout + 60, sock_connect=15))
        try:
            await check_status(resp)
            self._established()
            pending = b""
            # Bounded reads: iter_any() hands over everything aiohttp has buffered, which in a
            # burst is megabytes, copied again by the join and the split; a bounded read still
            # holds hundreds of lines (docs/performance.md).
            async for chunk in resp.content.iter_chunked(self._settings.read_bytes):
                if pending:
                    chunk = pending + chunk
                lines = chunk.split(b"\n")
                pending = lines.pop()
                self._rv = await self._handle_lines(lines, self._rv or rv)
                self._count_types()
            if pending.strip():
                self._rv = await self._handle_lines([pending], self._rv or rv)
        finally:
            self._count_types()
            resp.release()

    def _count_types(self) -> None:
        """Add the notifications seen since the last call to `watch_events` (once per read, not
        per line: a labelled counter takes a lock)."""
        for kind, seen in self._types_seen.items():
            if seen:
                counter = self._event_counters.get(kind)
                if counter is None:
                    counter = self._event_counters[kind] = self._metrics.watch_events.labels(
                        self.stream, str(kind))
                counter.inc(seen)
                self._types_seen[kind] = 0

    async def _handle_lines(self, lines: list[bytes], rv: str) -> str:
        """Hand one read's lines to the writer in one `put_many`; returns the resume point
        after them.

        The common line, an ADDED or MODIFIED Event, takes the first branch: one parse, one
        record, no await per line. An ERROR line hands over what came before it, with the
        resume point reached, and then raises."""
        items: list[Item] = []
        stream = self.stream
        types_seen = self._types_seen
        loads = orjson.loads
        for line in lines:
            if not line or line.isspace():
                continue
            try:
                message = loads(line)
                kind = message["type"]
                obj = message["object"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                self._malformed(line, exc)
                continue
            if kind == "ADDED" or kind == "MODIFIED":
                types_seen[kind] = types_seen.get(kind, 0) + 1
                body = served_object_bytes(line, kind) if len(message) == 2 else None
                record = self._record(obj, line, body)
                if record is not None:
                    rv = record.resource_version
                    items.append((stream, rv, record, None))
                continue
            if type(kind) is not str or kind not in WATCH_TYPES:
                self._malformed(line, ValueError(f"watch line type {_describe(kind)} is not "
                                                 f"one of {', '.join(sorted(WATCH_TYPES))}"))
                continue
            types_seen[kind] = types_seen.get(kind, 0) + 1
            if kind == "ERROR":
                await self._writer.put_many(items)
                self._rv = rv
                code = obj.get("code") if isinstance(obj, dict) else None
                text = obj.get("message", "") if isinstance(obj, dict) else str(obj)
                if code == 410:
                    raise ResourceGone(text)
                raise ApiError(code if isinstance(code, int) else 0, text)
            new_rv = _resource_version(obj)
            if new_rv is None:
                self._malformed(line, ValueError(f"{kind} without metadata.resourceVersion"))
                continue
            rv = new_rv
            if kind == "DELETED":
                # The Event expired (TTL): nothing to deliver, only bookkeeping and the resume
                # point.
                uid = obj.get("metadata", {}).get("uid")
                items.append((stream, new_rv, None, uid if isinstance(uid, str) else None))
            else:  # BOOKMARK: only moves the resume point
                items.append((stream, new_rv, None, None))
        if items:
            await self._writer.put_many(items)
        return rv

    def _record(self, obj: Any, line: bytes | None, body: bytes | None) -> NewRecord | None:
        """The spool record of one Event object; a malformed one is rejected (None)."""
        try:
            if not isinstance(obj, dict):
                raise MalformedEvent("watch object is not a JSON object")
            # A re-serialised body (a LIST item) waits in the writer's buffer: right-sized.
            return to_record(obj, body if body is not None else dumps_kept(obj))
        except MalformedEvent as exc:
            self._malformed(line if line is not None else orjson.dumps(obj), exc)
            return None

    async def _store(self, obj: Any) -> None:
        """One LIST item to the writer (the resume point moves only after the whole list)."""
        record = self._record(obj, None, None)
        if record is not None:
            await self._writer.put(self.stream, None, record)

    def _malformed(self, line: bytes, exc: BaseException) -> None:
        self._metrics.watch_malformed.labels(self.stream).inc()
        # The line itself is kept in the spool's `rejected` table, never logged: it may hold
        # anything, at any size (no payloads in logs).
        log.error("malformed watch line skipped (kept in the spool's rejected table)", extra={
            "stream": self.stream, "error": str(exc), "bytes": len(line)})
        self._writer.reject(self.stream, str(exc), line)


_SERVED_PREFIXES = {kind: b'{"type":"' + kind.encode() + b'","object":'
                    for kind in ("ADDED", "MODIFIED")}
_OPEN_BRACE = ord("{")


def served_object_bytes(line: bytes, kind: str) -> bytes | None:
    """The `object` of a watch line exactly as served, without re-serialising it.

    kube-apiserver writes `{"type":"ADDED","object":{...}}`: with the caller having checked that
    the message has only those two keys, everything between `"object":` and the closing brace
    is the object's JSON text. Any other layout (spaces, other key order) returns None and the
    caller serialises the parsed object instead. Saves an orjson.dumps per event on the hot path.
    """
    prefix = _SERVED_PREFIXES.get(kind) or b'{"type":"' + kind.encode() + b'","object":'
    if not line.startswith(prefix):
        return None
    start = len(prefix)
    if line.endswith(b"}}") and line[start] == _OPEN_BRACE:  # as served: one slice, no strips
        return line[start:-1]
    body = line[start:].rstrip()
    if not body.endswith(b"}}"):
        return None
    body = body[:-1].rstrip()
    return body if body.startswith(b"{") else None


def _describe(kind: object) -> str:
    """A watch line's `type` for an error message: short, and never the payload."""
    if type(kind) is str:
        return repr(kind[:40])
    return f"of JSON type {type(kind).__name__}"


def _resource_version(obj: Any) -> str | None:
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            rv = meta.get("resourceVersion")
            if isinstance(rv, str) and rv:
                return rv
    return None
