"""apiVersion + kind → the URL path of an object, from the API server's own discovery.

Events can be about any kind, custom resources included, and a kind's plural and scope are
only known from discovery (`/api/v1`, `/apis/{group}/{version}`: APIResourceList). Each group
version is fetched once, when an Event first names it, shared by concurrent lookups, and
refreshed after `refresh` seconds — never per cache miss. A kind a server does not serve
(or a group version that is not there) resolves to None until the next refresh. Discovery
requests are few and not charged to the lookup budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from eventpipe.enrich.client import ObjectClient

log = logging.getLogger("eventpipe.enrich")


@dataclass(frozen=True, slots=True)
class Resource:
    """One served resource: its plural name and whether it lives in a namespace."""

    plural: str
    namespaced: bool


Kinds = dict[str, Resource]


def group_version_path(api_version: str) -> str:
    """`/api/v1` for the core group, `/apis/{group}/{version}` otherwise."""
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


class ResourceMap:
    """Resolves object paths from discovery, cached per group version."""

    def __init__(self, client: ObjectClient, *, refresh: float, retry_after: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._refresh = refresh
        self._retry_after = retry_after
        self._clock = clock
        self._groups: dict[str, tuple[float, Kinds]] = {}  # gv -> (expires at, kinds)
        self._pending: dict[str, asyncio.Task[Kinds]] = {}
        self.requests = 0
        """Discovery requests made (tests assert it stays small)."""

    async def path(self, api_version: str, kind: str, namespace: str, name: str) -> str | None:
        """The object's URL path, or None when the server does not serve that kind."""
        api_version = api_version or "v1"
        resource = (await self._kinds(api_version)).get(kind)
        if resource is None or not name:
            return None
        base = group_version_path(api_version)
        if resource.namespaced:
            if not namespace:
                return None
            return f"{base}/namespaces/{quote(namespace, safe='')}/{resource.plural}/" \
                   f"{quote(name, safe='')}"
        return f"{base}/{resource.plural}/{quote(name, safe='')}"

    def served(self, api_version: str, kind: str) -> bool | None:
        """Whether the server serves `kind` as far as discovery knows; None: not asked yet."""
        cached = self._groups.get(api_version or "v1")
        if cached is None or self._clock() >= cached[0]:
            return None
        return kind in cached[1]

    async def _kinds(self, api_version: str) -> Kinds:
        cached = self._groups.get(api_version)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        task = self._pending.get(api_version)
        if task is None:
            task = asyncio.create_task(self._fetch(api_version, cached),
                                       name=f"discovery {api_version}")
            self._pending[api_version] = task
            task.add_done_callback(lambda _t: self._pending.pop(api_version, None))
        return await asyncio.shield(task)  # one waiter timing out must not cancel the rest

    async def _fetch(self, api_version: str, cached: tuple[float, Kinds] | None) -> Kinds:
        self.requests += 1
        path = group_version_path(api_version)
        try:
            status, body = await self._client.get(path)
        except Exception as exc:  # connection errors, timeouts: keep what we had, retry soon
            log.warning("discovery failed", extra={"path": path, "error": repr(exc)})
            status, body = 0, None
        if status == 404 or (body is not None and 200 <= status < 300):
            kinds = _parse(body) if body is not None else {}
            expires = self._clock() + self._refresh
        else:
            if status:
                log.warning("discovery failed", extra={"path": path, "status": status})
            kinds = cached[1] if cached is not None else {}
            expires = self._clock() + self._retry_after
        self._groups[api_version] = (expires, kinds)
        return kinds


def _parse(body: object) -> Kinds:
    kinds: Kinds = {}
    resources = body.get("resources") if isinstance(body, dict) else None
    for item in resources or ():
        if not isinstance(item, dict):
            continue
        plural, kind = item.get("name"), item.get("kind")
        if isinstance(plural, str) and "/" not in plural and isinstance(kind, str):
            kinds.setdefault(kind, Resource(plural, bool(item.get("namespaced"))))
    return kinds
