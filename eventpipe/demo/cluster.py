"""A simulated cluster for `eventpipe demo`: an aiohttp server speaking the Events list/watch API.

It serves just enough of kube-apiserver for the real kubernetes-asyncio client, pointed at it by
a generated kubeconfig, to list and watch core/v1 Events: paged LIST (limit/continue), WATCH from
a resourceVersion with BOOKMARKs and timeoutSeconds, 410 Gone as an in-stream ERROR for a resume
point it no longer has, bearer-token auth. So the demo runs the same client, watcher and spool
code as `eventpipe run` does against a real cluster.

resourceVersions start at the wall clock in milliseconds: a spool left by an earlier demo run
holds a resume point older than anything this run has, gets 410 and relists — the same recovery
a real compaction triggers. Deliberately smaller than tests/fakeapi (no fault injection, no
events.k8s.io view): that one exists to break the protocol, this one to show it working.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

Event = dict[str, Any]
_PATHS = ("/api/v1/events", "/api/v1/namespaces/{ns}/events")


class SimulatedCluster:
    """Events in memory with one revision counter; `async with SimulatedCluster() as c: ...`."""

    def __init__(self, *, max_live: int = 2000, history: int = 20_000,
                 bookmark_interval: float = 5.0) -> None:
        self.token = secrets.token_hex(16)
        self.rv = int(time.time() * 1000)
        """The newest resourceVersion written."""
        self.base = self.rv
        """Changes with rv > base are in history; a watch from before it gets 410."""
        self.requests: collections.Counter[str] = collections.Counter()
        """Requests served, by verb: "list", "watch"."""
        self.user_agents: set[str] = set()
        """User-Agent headers seen on Event requests (proves which client talked to us)."""
        self.written = 0
        """Event versions written (ADDED + MODIFIED)."""
        self._live: dict[str, tuple[int, Event]] = {}  # uid -> (rv, object), oldest first
        self._history: list[tuple[int, str | None, bytes]] = []  # (rv, namespace, watch line)
        self._max_live = max_live
        self._max_history = history
        self._bookmark_interval = bookmark_interval
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the API server."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SimulatedCluster:
        app = web.Application()
        for path in _PATHS:
            app.router.add_get(path, self._events)
        app.router.add_get("/version", self._version)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig for this server: plain HTTP and the bearer token."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "eventpipe-demo",
            "clusters": [{"name": "eventpipe-demo", "cluster": {"server": self.url}}],
            "users": [{"name": "eventpipe-demo", "user": {"token": self.token}}],
            "contexts": [{"name": "eventpipe-demo",
                          "context": {"cluster": "eventpipe-demo", "user": "eventpipe-demo"}}],
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)  # it holds a token, as a real kubeconfig would
        return path

    # ---- writes ----------------------------------------------------------------------------
    def put(self, event: Event) -> str:
        """Store a version: ADDED for a new uid, MODIFIED otherwise; returns its rv."""
        uid: str = event["metadata"]["uid"]
        kind = "MODIFIED" if uid in self._live else "ADDED"
        self.rv += 1
        obj = {**event, "metadata": {**event["metadata"], "resourceVersion": str(self.rv)}}
        self._live.pop(uid, None)  # re-insert: the dict stays ordered oldest write first
        self._live[uid] = (self.rv, obj)
        self.written += 1
        self._append(kind, obj)
        if len(self._live) > self._max_live:  # the TTL of a real cluster, by count
            old_uid = next(iter(self._live))
            _, old = self._live.pop(old_uid)
            self.rv += 1
            self._append("DELETED", {**old, "metadata": {**old["metadata"],
                                                         "resourceVersion": str(self.rv)}})
        return str(self.rv)

    def _append(self, kind: str, obj: Event) -> None:
        line = orjson.dumps({"type": kind, "object": obj}) + b"\n"
        self._history.append((self.rv, obj["metadata"].get("namespace"), line))
        if len(self._history) > self._max_history:  # compaction: forget the older half
            drop = len(self._history) // 2
            self.base = self._history[drop - 1][0]
            del self._history[:drop]
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- HTTP ------------------------------------------------------------------------------
    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "31", "gitVersion": "v1.31.0-demo",
                                  "platform": "linux/amd64"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized")
        self.user_agents.add(request.headers.get("User-Agent", ""))
        namespace = request.match_info.get("ns")
        if request.query.get("watch", "").lower() in ("true", "1"):
            self.requests["watch"] += 1
            return await self._watch(request, namespace)
        self.requests["list"] += 1
        return self._list(request, namespace)

    def _list(self, request: web.Request, namespace: str | None) -> web.Response:
        """One page of the Events whose current version is at or below the first page's rv."""
        try:
            limit = int(request.query.get("limit") or 0)
            snap, offset = (int(x) for x in (request.query.get("continue") or f"{self.rv}:0")
                            .split(":"))
        except ValueError:
            return _status(400, "invalid limit or continue")
        items = [obj for rv, obj in self._live.values()
                 if rv <= snap and (namespace is None or obj["metadata"].get("namespace")
                                    == namespace)]
        page = items[offset:offset + limit] if limit > 0 else items[offset:]
        meta: dict[str, Any] = {"resourceVersion": str(snap)}
        if offset + len(page) < len(items):
            meta["continue"] = f"{snap}:{offset + len(page)}"
        body = {"kind": "EventList", "apiVersion": "v1", "metadata": meta,
                "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                          for o in page]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(self, request: web.Request, namespace: str | None) -> web.StreamResponse:
        try:
            pos = int(request.query.get("resourceVersion") or self.rv)
            timeout = float(request.query.get("timeoutSeconds") or 1800)
        except ValueError:
            return _status(400, "invalid resourceVersion or timeoutSeconds")
        bookmarks = request.query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with contextlib.suppress(ConnectionError):
            while loop.time() < deadline:
                if pos < self.base or pos > self.rv:
                    gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": "Expired", "code": 410,
                            "message": f"too old resource version: {pos} ({self.base})"}
                    await resp.write(orjson.dumps({"type": "ERROR", "object": gone}) + b"\n")
                    break
                start = bisect.bisect_right(self._history, pos, key=lambda h: h[0])
                lines = [line for _, ns, line in self._history[start:]
                         if namespace is None or ns == namespace]
                pos = self.rv
                if lines:
                    await resp.write(b"".join(lines))
                    continue
                changed = self._changed
                wait = min(self._bookmark_interval, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), max(wait, 0.0))
                if not changed.is_set() and bookmarks:
                    bookmark = {"kind": "Event", "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(pos)}}
                    await resp.write(orjson.dumps({"type": "BOOKMARK", "object": bookmark})
                                     + b"\n")
            await resp.write_eof()
        return resp


def _status(code: int, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "code": code}
    return web.json_response(body, status=code)
