"""coordination.k8s.io/v1 Leases on the fake API server, for leader-election tests.

GET, POST (create) and PUT (update) of namespaced Leases with the part of the real semantics
leader election depends on: every write gets a new `metadata.resourceVersion`; a PUT whose
resourceVersion is not the current one is refused with 409 Conflict (optimistic concurrency,
"the object has been modified"); a create of an existing name is 409 AlreadyExists. The bearer
token is checked by the server's middleware like every other path. `unavailable` makes every
Lease request answer 503, as a leader cut off from the control plane sees it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable

import orjson
from aiohttp import web

from tests.fakeapi.convert import Obj, status
from tests.fakeapi.faults import json_response
from tests.fakeapi.store import now_rfc3339

BASE = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


class LeaseStore:
    """The Leases the fake holds, keyed by (namespace, name), and the routes that serve them."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.leases: dict[tuple[str, str], Obj] = {}
        self.unavailable = False
        """When True every Lease request gets 503 (the API server unreachable)."""
        self.writes: list[Obj] = []
        """Every Lease as written (create or update), in order."""
        self._rv = 0
        self._on_change = on_change

    def add_routes(self, app: web.Application) -> None:
        """Register the Lease routes on the fake's application."""
        app.router.add_get(BASE + "/{name}", self._get)
        app.router.add_post(BASE, self._create)
        app.router.add_put(BASE + "/{name}", self._update)

    # ---- test-facing ----------------------------------------------------------------------
    def get(self, name: str, namespace: str = "default") -> Obj | None:
        """A copy of the Lease, or None."""
        lease = self.leases.get((namespace, name))
        return None if lease is None else copy.deepcopy(lease)

    def holder(self, name: str, namespace: str = "default") -> str:
        """The Lease's holderIdentity ("" when none or no Lease)."""
        lease = self.leases.get((namespace, name))
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def put(self, lease: Obj) -> Obj:
        """Write `lease` as another client would (no resourceVersion check); returns it stored."""
        meta = lease.setdefault("metadata", {})
        return self._store(meta.get("namespace", "default"), meta["name"], lease)

    # ---- HTTP -----------------------------------------------------------------------------
    def _refused(self) -> web.Response | None:
        if self.unavailable:
            return json_response(status(503, "The server is currently unable to handle the "
                                        "request"), 503)
        return None

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refused()) is not None:
            return refused
        ns, name = request.match_info["ns"], request.match_info["name"]
        lease = self.leases.get((ns, name))
        if lease is None:
            return _not_found(name)
        return json_response(lease, 200)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refused()) is not None:
            return refused
        ns = request.match_info["ns"]
        body = await _body(request)
        if body is None:
            return json_response(status(400, "request body is not a Lease"), 400)
        name = str(body["metadata"].get("name") or "")
        if not name:
            return json_response(status(422, "metadata.name: Required value", reason="Invalid"),
                                 422)
        if (ns, name) in self.leases:
            return json_response(status(409, f'leases.coordination.k8s.io "{name}" already '
                                        "exists", reason="AlreadyExists"), 409)
        body["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        return json_response(self._store(ns, name, body), 201)

    async def _update(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refused()) is not None:
            return refused
        ns, name = request.match_info["ns"], request.match_info["name"]
        body = await _body(request)
        if body is None:
            return json_response(status(400, "request body is not a Lease"), 400)
        current = self.leases.get((ns, name))
        if current is None:
            return _not_found(name)
        if body["metadata"].get("name", name) != name:
            return json_response(status(400, "the name of the object does not match the name "
                                        "on the URL"), 400)
        given = body["metadata"].get("resourceVersion")
        if given and given != current["metadata"]["resourceVersion"]:
            return json_response(status(
                409, f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": '
                "the object has been modified; please apply your changes to the latest "
                "version and try again"), 409)
        for key in ("uid", "creationTimestamp"):
            body["metadata"][key] = current["metadata"].get(key)
        return json_response(self._store(ns, name, body), 200)

    def _store(self, ns: str, name: str, lease: Obj) -> Obj:
        self._rv += 1
        lease = copy.deepcopy(lease)
        lease.update(apiVersion="coordination.k8s.io/v1", kind="Lease")
        lease["metadata"].update(name=name, namespace=ns, resourceVersion=str(self._rv))
        self.leases[(ns, name)] = lease
        self.writes.append(copy.deepcopy(lease))
        if self._on_change is not None:
            self._on_change()
        return lease


async def _body(request: web.Request) -> Obj | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        return None
    body.setdefault("metadata", {})
    return body


def _not_found(name: str) -> web.Response:
    return json_response(status(404, f'leases.coordination.k8s.io "{name}" not found',
                                details={"name": name, "group": "coordination.k8s.io",
                                         "kind": "leases"}), 404)
