"""LIST and WATCH of the objects Events are about, in the shapes eventpipe's metadata caches ask
for: `PartialObjectMetadataList` / `PartialObjectMetadata` (Accept `as=...;g=meta.k8s.io`), and
for Pods a server-side `Table` with `includeObject=Metadata` whose Node column is spec.nodeName.
As kube-apiserver does, a Table watch sends `columnDefinitions` with its first event only, and a
watch from a compacted resourceVersion gets an in-stream 410 ERROR.

Faults a test can ask for through `FakeObjects`: `fail(status)` (every object request),
`forbid(plural)` (a real RBAC 403 Status), `compact()` (410 for older resume points),
`cut_watches()` (connections dropped mid-stream), `bookmark()` (a BOOKMARK on every stream).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakeapi.convert import Obj, status, too_old
from tests.fakeapi.faults import SERVICE_ACCOUNT, json_response

META = "meta.k8s.io/v1"
_PRINT_COLUMNS = ("Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                  "Readiness Gates")


@dataclass(frozen=True, slots=True)
class Change:
    """One object change, as the watch replays it."""

    rv: int
    type: str
    plural: str
    namespace: str
    obj: Obj


@dataclass(eq=False)
class ObjectStream:
    """One open object watch."""

    plural: str
    namespace: str | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    cut: bool = False
    bookmark_due: bool = False


def partial(obj: Obj) -> Obj:
    """The PartialObjectMetadata view of an object."""
    return {"kind": "PartialObjectMetadata", "apiVersion": META, "metadata": obj["metadata"]}


def columns() -> list[Obj]:
    """The Pod table's column definitions (kubectl's printer columns)."""
    return [{"name": n, "type": "integer" if n == "Restarts" else "string",
             "format": "name" if n == "Name" else "", "description": n,
             "priority": 0 if n in ("Name", "Ready", "Status", "Restarts", "Age") else 1}
            for n in _PRINT_COLUMNS]


def table_row(obj: Obj) -> Obj:
    """One Table row for a Pod: printed cells plus its metadata."""
    node = (obj.get("spec") or {}).get("nodeName") or "<none>"
    cells = [obj["metadata"]["name"], "0/1", "Pending", 0, "1s", "<none>", node, "<none>",
             "<none>"]
    return {"cells": cells, "object": partial(obj)}


def wants(request: web.Request) -> str:
    """"table", "metadata" or "full", from the Accept header."""
    accept = request.headers.get("Accept", "")
    if "as=Table" in accept:
        return "table"
    return "metadata" if "as=PartialObjectMetadata" in accept else "full"


def forbidden(plural: str, group: str, namespace: str | None, verb: str) -> web.Response:
    """The 403 kube-apiserver's RBAC answers with."""
    where = "at the cluster scope" if not namespace else f'in the namespace "{namespace}"'
    resource = f"{plural}.{group}" if group else plural
    message = (f'{resource} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
               f'"{plural}" in API group "{group}" {where}')
    return json_response(status(403, message, details={"group": group, "kind": plural}), 403)


def list_body(objs: list[Obj], shape: str, rv: int, token: str) -> Obj:
    """A list response in the asked-for shape."""
    meta: Obj = {"resourceVersion": str(rv)}
    if token:
        meta["continue"] = token
    if shape == "table":
        return {"kind": "Table", "apiVersion": META, "metadata": meta,
                "columnDefinitions": columns(), "rows": [table_row(o) for o in objs]}
    if shape == "metadata":
        return {"kind": "PartialObjectMetadataList", "apiVersion": META, "metadata": meta,
                "items": [partial(o) for o in objs]}
    return {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": objs}


def watch_line(kind: str, obj: Obj, shape: str, first: bool) -> bytes:
    """One watch event in the asked-for shape."""
    if shape == "table":
        body: Any = {"kind": "Table", "apiVersion": META,
                     "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                     "columnDefinitions": columns() if first else None,
                     "rows": [table_row(obj)]}
    elif shape == "metadata":
        body = partial(obj)
    else:
        body = obj
    return orjson.dumps({"type": kind, "object": body}) + b"\n"


def bookmark_line(rv: int, shape: str) -> bytes:
    """A BOOKMARK carrying only the resourceVersion."""
    obj: Obj = {"kind": "PartialObjectMetadata" if shape != "full" else "Object",
                "apiVersion": META, "metadata": {"resourceVersion": str(rv)}}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


async def serve_watch(request: web.Request, stream: ObjectStream, history: list[Change],
                      start: int, compacted: int, shape: str, stream_seconds: float | None,
                      bookmarks: bool) -> web.StreamResponse:
    """Replay the changes after `start`, then follow new ones until timeout or a cut; a
    `start` older than `compacted` gets the in-stream 410."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if start < compacted:
        error = too_old(start, compacted)
        await resp.write(orjson.dumps({"type": "ERROR", "object": error}) + b"\n")
        await resp.write_eof()
        return resp
    loop = asyncio.get_running_loop()
    deadline = None if stream_seconds is None else loop.time() + stream_seconds
    pos = start
    first = True
    with contextlib.suppress(ConnectionError):
        while True:
            stream.wake.clear()
            if stream.cut:
                if request.transport is not None:
                    request.transport.abort()
                return resp
            if deadline is not None and loop.time() >= deadline:
                break
            lines = []
            for change in history[bisect.bisect_right(history, pos, key=_rv):]:
                pos = change.rv
                if change.plural == stream.plural and stream.namespace in (None,
                                                                           change.namespace):
                    lines.append(watch_line(change.type, change.obj, shape, first))
                    first = False
            if lines:
                await resp.write(b"".join(lines))
                continue
            if stream.bookmark_due and bookmarks:
                stream.bookmark_due = False
                await resp.write(bookmark_line(pos, shape))
                continue
            left = None if deadline is None else max(0.0, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.wake.wait(), left)
        await resp.write_eof()
    return resp


def _rv(change: Change) -> int:
    return change.rv
