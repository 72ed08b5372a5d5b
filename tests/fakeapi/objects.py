"""The objects Events are about, served by the fake API server for enrichment lookups.

Pods, ReplicaSets, Deployments, Jobs, CronJobs, StatefulSets, DaemonSets and Nodes (plus any
custom kind a test declares) are served at their real paths — `/api/v1/namespaces/{ns}/pods/
{name}`, `/apis/apps/v1/namespaces/{ns}/replicasets/{name}`, `/api/v1/nodes/{name}` — with
GET by name only, the way eventpipe's enricher asks. Discovery (`/api/v1`, `/apis`,
`/apis/{group}/{version}`) lists those kinds only once a test has added an object or a kind,
so tests that never touch objects see the events-only server they always saw.

Tests read `lookups` (object GETs answered, failures included), switch failures on with
`fail(429)` / `fail(500)`, and delete objects (a later GET is a 404 NotFound). Once enabled, the
same kinds are listed and watched as metadata (tests.fakeapi.objectwatch); `object_requests`
counts those lists and watches.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakeapi.convert import Obj, status
from tests.fakeapi.faults import json_response
from tests.fakeapi.objectwatch import (
    Change,
    ObjectStream,
    forbidden,
    list_body,
    serve_watch,
    wants,
)

# kind -> (group version, plural, namespaced)
BUILTIN_KINDS: dict[str, tuple[str, str, bool]] = {
    "Pod": ("v1", "pods", True),
    "Node": ("v1", "nodes", False),
    "ReplicaSet": ("apps/v1", "replicasets", True),
    "Deployment": ("apps/v1", "deployments", True),
    "StatefulSet": ("apps/v1", "statefulsets", True),
    "DaemonSet": ("apps/v1", "daemonsets", True),
    "Job": ("batch/v1", "jobs", True),
    "CronJob": ("batch/v1", "cronjobs", True),
}
Key = tuple[str, str, str, str]  # (group version, plural, namespace, name)


class FakeObjects:
    """The object store behind the lookup routes; `api.objects` on a FakeApiServer."""

    def __init__(self) -> None:
        self.kinds: dict[str, tuple[str, str, bool]] = dict(BUILTIN_KINDS)
        self.objects: dict[Key, Obj] = {}
        self.lookups = 0
        """Object GETs received (not discovery), whatever the answer."""
        self.lookup_paths: list[str] = []
        self.fail_status: int | None = None
        self.enabled = False
        """True once a test added an object or a kind: discovery then lists them."""
        self._rv = itertools.count(5000)
        self.rv = 4999
        """The newest object resourceVersion."""
        self.history: list[Change] = []
        self.compacted = 0
        self.forbidden: set[str] = set()
        """Plurals whose list/watch RBAC refuses (403)."""
        self.streams: set[ObjectStream] = set()
        self.on_activity: Callable[[], None] = lambda: None
        """Called when an object watch opens (the server's wait_for re-checks then)."""
        self.object_requests: list[tuple[str, str]] = []
        """(list|watch, path) of every object collection request."""
        self.lists_open = asyncio.Event()
        """Cleared by `hold_lists`: object lists wait for it (a slow first list)."""
        self.lists_open.set()

    # ---- what tests call -----------------------------------------------------------------
    def add(self, kind: str, name: str, *, namespace: str = "default",
            labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
            owner: Obj | None = None, node: str | None = None) -> Obj:
        """Create an object; `owner` (another added object) becomes its controller."""
        self.enabled = True
        group_version, _plural, namespaced = self.kinds[kind]
        meta: Obj = {"name": name, "uid": str(uuid.uuid4()),
                     "resourceVersion": str(next(self._rv))}
        if namespaced:
            meta["namespace"] = namespace
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        if owner is not None:
            meta["ownerReferences"] = [{
                "apiVersion": owner["apiVersion"], "kind": owner["kind"],
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "controller": True, "blockOwnerDeletion": True}]
        obj: Obj = {"apiVersion": group_version, "kind": kind, "metadata": meta}
        if node is not None:
            obj["spec"] = {"nodeName": node, "containers": [{"name": "app", "image": "x"}]}
        self.objects[self._key(obj)] = obj
        self._changed("ADDED", obj, new_rv=False)
        return obj

    def set_labels(self, obj: Obj, labels: dict[str, str]) -> Obj:
        """Replace an object's labels; its resourceVersion moves on."""
        obj["metadata"]["labels"] = dict(labels)
        self._changed("MODIFIED", obj)
        return obj

    def bind(self, pod: Obj, node: str) -> Obj:
        """Set a Pod's spec.nodeName, as the scheduler's binding does."""
        pod.setdefault("spec", {"containers": [{"name": "app", "image": "x"}]})["nodeName"] = node
        self._changed("MODIFIED", pod)
        return pod

    def delete(self, obj: Obj) -> None:
        """Remove an object: GETs answer 404 from now on, watches see DELETED."""
        if self.objects.pop(self._key(obj), None) is not None:
            self._changed("DELETED", obj)

    def compact(self) -> int:
        """Forget history: a watch from an older resourceVersion gets 410. Returns the rv."""
        self.compacted = self.rv
        self.history.clear()  # in place: open watches hold this list
        return self.rv

    def cut_watches(self) -> None:
        """Drop every open object watch mid-stream."""
        for stream in self.streams:
            stream.cut = True
            stream.wake.set()

    def bookmark(self) -> None:
        """Send a BOOKMARK on every open object watch that allows them."""
        for stream in self.streams:
            stream.bookmark_due = True
            stream.wake.set()

    def forbid(self, plural: str, forbidden: bool = True) -> None:
        """RBAC: 403 on list/watch of `plural` (or allow it again)."""
        if forbidden:
            self.forbidden.add(plural)
        else:
            self.forbidden.discard(plural)

    def _changed(self, kind: str, obj: Obj, *, new_rv: bool = True) -> None:
        if new_rv:
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.rv = int(obj["metadata"]["resourceVersion"])
        _gv, plural, _ = self.kinds[obj["kind"]]
        self.history.append(Change(self.rv, kind, plural, obj["metadata"].get("namespace", ""),
                                   copy.deepcopy(obj)))
        for stream in self.streams:
            stream.wake.set()

    def add_kind(self, api_version: str, kind: str, plural: str, *,
                 namespaced: bool = True) -> None:
        """Serve a custom resource kind (listed in discovery under its group)."""
        self.enabled = True
        self.kinds[kind] = (api_version, plural, namespaced)

    def hold_lists(self, held: bool = True) -> None:
        """Keep object LISTs waiting (a large cluster's first list) until called with False."""
        if held:
            self.lists_open.clear()
        else:
            self.lists_open.set()

    def fail(self, status_code: int | None) -> None:
        """Answer every object GET with this status (429, 500, ...); None: stop failing."""
        self.fail_status = status_code

    @staticmethod
    def reference(obj: Obj) -> Obj:
        """The ObjectReference an Event about `obj` carries as involvedObject."""
        meta = obj["metadata"]
        ref: Obj = {"kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
                    "apiVersion": obj["apiVersion"], "resourceVersion": meta["resourceVersion"]}
        if "namespace" in meta:
            ref["namespace"] = meta["namespace"]
        return ref

    # ---- what the server calls -----------------------------------------------------------
    def register(self, app: web.Application) -> None:
        """Add the object and discovery routes (after the server's own static routes)."""
        app.router.add_get("/api/v1/namespaces/{ns}/{plural}", self._collection)
        app.router.add_get("/api/v1/{plural}", self._collection)
        app.router.add_get("/apis/{group}/{version}/namespaces/{ns}/{plural}", self._collection)
        app.router.add_get("/apis/{group}/{version}/{plural}", self._collection)
        app.router.add_get("/api/v1/namespaces/{ns}/{plural}/{name}", self._get)
        app.router.add_get("/api/v1/{plural}/{name}", self._get)
        app.router.add_get("/apis/{group}/{version}", self._discovery)
        app.router.add_get("/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}", self._get)
        app.router.add_get("/apis/{group}/{version}/{plural}/{name}", self._get)

    def resource_list(self, group_version: str, base: Obj) -> Obj:
        """`base` (the server's own APIResourceList) plus the kinds served in that version."""
        if not self.enabled:
            return base
        extra = [{"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                  "kind": kind, "verbs": ["get", "list", "watch"]}
                 for kind, (gv, plural, namespaced) in self.kinds.items() if gv == group_version]
        return {**base, "resources": [*base.get("resources", []), *extra]}

    def api_groups(self, base: Obj) -> Obj:
        """`base` (the server's APIGroupList) plus the groups of the served kinds."""
        if not self.enabled:
            return base
        groups = list(base["groups"])
        known = {g["name"] for g in groups}
        for group_version in sorted({gv for gv, _, _ in self.kinds.values() if "/" in gv}):
            name, version = group_version.split("/")
            if name not in known:
                known.add(name)
                entry = {"groupVersion": group_version, "version": version}
                groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
        return {**base, "groups": groups}

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        group_version = f"{request.match_info['group']}/{request.match_info['version']}"
        if not self.enabled or all(gv != group_version for gv, _, _ in self.kinds.values()):
            return json_response(status(404, "the server could not find the requested "
                                        "resource"), 404)
        base: Obj = {"kind": "APIResourceList", "apiVersion": "v1",
                     "groupVersion": group_version, "resources": []}
        return json_response(self.resource_list(group_version, base), 200)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        self.lookups += 1
        self.lookup_paths.append(request.path)
        info = request.match_info
        if self.fail_status is not None:
            code = self.fail_status
            return json_response(status(code, "lookup refused by the test"), code,
                                 {"Retry-After": "1"})
        group = info.get("group")
        group_version = f"{group}/{info['version']}" if group else "v1"
        obj = self.objects.get((group_version, info["plural"], info.get("ns", ""), info["name"]))
        if obj is None:
            details: dict[str, Any] = {"name": info["name"], "kind": info["plural"]}
            return json_response(status(404, f'{info["plural"]} "{info["name"]}" not found',
                                        details=details), 404)
        return json_response(obj, 200)

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        group = info.get("group", "")
        group_version = f"{group}/{info['version']}" if group else "v1"
        plural, namespace = info["plural"], info.get("ns")
        watch = request.query.get("watch", "") in ("true", "1")
        self.object_requests.append(("watch" if watch else "list", request.path))
        served = self.enabled and any(gv == group_version and p == plural
                                      for gv, p, _ in self.kinds.values())
        if not served:  # like discovery: the events-only server until a test adds objects
            return json_response(status(404, "the server could not find the requested "
                                        "resource"), 404)
        if self.fail_status is not None:
            code = self.fail_status
            return json_response(status(code, "refused by the test"), code, {"Retry-After": "1"})
        if plural in self.forbidden:
            return forbidden(plural, group, namespace, "watch" if watch else "list")
        shape = wants(request)
        if watch:
            stream = ObjectStream(plural, namespace)
            self.streams.add(stream)
            self.on_activity()
            try:
                query = request.query
                timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
                return await serve_watch(
                    request, stream, self.history, int(query.get("resourceVersion") or self.rv),
                    self.compacted, shape, timeout,
                    query.get("allowWatchBookmarks", "") in ("true", "1"))
            finally:
                self.streams.discard(stream)
        await self.lists_open.wait()
        objs = sorted((o for (gv, p, ns, _), o in self.objects.items()
                       if gv == group_version and p == plural and namespace in (None, ns)),
                      key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        limit = int(request.query.get("limit") or 0) or len(objs) or 1
        offset, _, rv = (request.query.get("continue") or "").partition(":")
        start = int(offset or 0)
        page = objs[start:start + limit]
        token = f"{start + limit}:{rv or self.rv}" if start + limit < len(objs) else ""
        return json_response(list_body(page, shape, int(rv or self.rv), token), 200)

    def _key(self, obj: Obj) -> Key:
        group_version, plural, _ = self.kinds[obj["kind"]]
        meta = obj["metadata"]
        return group_version, plural, meta.get("namespace", ""), meta["name"]
