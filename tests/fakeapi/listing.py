"""Paginated LIST for the fake API server, with kube-apiserver's continue-token semantics.

The first page fixes a snapshot revision; every later page is read from that same snapshot
(the store can rebuild it while the revision is still in history), so a paginated list is
consistent even while events are written. A token whose revision was compacted away gets
410 Expired, exactly the case a watcher must answer with a fresh list.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from aiohttp import web

from tests.fakeapi.convert import status
from tests.fakeapi.faults import json_response
from tests.fakeapi.store import Compacted, EventStore

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue value "
    "from the response to get a consistent list result."
)


def encode_continue(rv: int, offset: int) -> str:
    """An opaque continue token holding the snapshot revision and the next offset."""
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": offset})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, int]:
    """(rv, offset) from a token made by `encode_continue`; ValueError if it is not one."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        rv, offset = int(data["rv"]), int(data["start"])
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid continue token: {exc}") from exc
    if rv < 0 or offset < 0:
        raise ValueError("invalid continue token: negative field")
    return rv, offset


def list_events(
    store: EventStore, view: str, namespace: str | None, query: dict[str, str]
) -> web.Response:
    """Answer a LIST: one page of the snapshot (`resourceVersion` asked for is ignored)."""
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        return json_response(status(400, "limit must be an integer"), 400)
    token = query.get("continue")
    if token:
        try:
            snap_rv, offset = decode_continue(token)
        except ValueError as exc:
            return json_response(status(400, str(exc)), 400)
    else:
        snap_rv, offset = store.rv, 0
    try:
        items = store.snapshot(snap_rv, namespace)
    except Compacted:
        return json_response(status(410, EXPIRED_CONTINUE, reason="Expired"), 410)
    page = items[offset : offset + limit] if limit > 0 else items[offset:]
    end = offset + len(page)
    meta: dict[str, object] = {"resourceVersion": str(snap_rv)}
    if end < len(items):
        meta["continue"] = encode_continue(snap_rv, end)
        meta["remainingItemCount"] = len(items) - end
    api = b'"v1"' if view == "core" else b'"events.k8s.io/v1"'
    body = b'{"kind":"EventList","apiVersion":%s,"metadata":%s,"items":[%s]}' % (
        api,
        orjson.dumps(meta),
        b",".join(c.item(view) for c in page),
    )
    return web.Response(body=body, content_type="application/json")
