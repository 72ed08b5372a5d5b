"""The two Event list/watch calls the watcher makes, over a kubernetes-asyncio ApiClient
(`eventpipe.kube.client.connect`).

We only use its generated list calls with `_preload_content=False` so the hot path gets the raw
aiohttp response and parses lines itself (decoding into model objects is far slower than into
dicts; see docs/performance.md).
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio import client


class EventsApi(Protocol):
    """The one call the watcher needs, for one API group and namespace."""

    @property
    def api_group(self) -> str:
        """"core" or "events.k8s.io"."""
        ...

    @property
    def namespace(self) -> str:
        """The namespace watched; "" for all namespaces."""
        ...

    async def request(self, **params: Any) -> aiohttp.ClientResponse:
        """List (or watch, with watch=True) Events; returns the raw response."""
        ...


class KubeEventsApi:
    """`EventsApi` over kubernetes-asyncio for core/v1 or events.k8s.io/v1."""

    def __init__(self, api_client: client.ApiClient, *, api_group: str, namespace: str) -> None:
        api: Any = (client.EventsV1Api(api_client) if api_group == "events.k8s.io"
                    else client.CoreV1Api(api_client))
        self._api_group = api_group
        self._namespace = namespace
        if namespace:
            self._call = (api.list_namespaced_event)
        else:
            self._call = api.list_event_for_all_namespaces

    @property
    def api_group(self) -> str:
        """"core" or "events.k8s.io"."""
        return self._api_group

    @property
    def namespace(self) -> str:
        """The namespace watched; "" for all namespaces."""
        return self._namespace

    async def request(self, **params: Any) -> aiohttp.ClientResponse:
        """Issue the list/watch call and return the unread aiohttp response."""
        if self._namespace:
            resp = await self._call(self._namespace, _preload_content=False, **params)
        else:
            resp = await self._call(_preload_content=False, **params)
        return resp  # type: ignore[no-any-return]


def forbidden_reason(api_group: str, namespace: str) -> str:
    """What a 403 on the Event list/watch means, naming the namespace and the permission the
    service account lacks, so an operator can fix the Role without reading API server logs."""
    resource = "events.events.k8s.io" if api_group == "events.k8s.io" else "events"
    if namespace:
        return (f"cannot list/watch {resource} in namespace {namespace}: RBAC forbids it "
                f"(need get/list/watch on {resource} in {namespace})")
    return (f"cannot list/watch {resource} in all namespaces: RBAC forbids it (need "
            f"get/list/watch on {resource} cluster-wide in a ClusterRole, or set "
            f"watch.namespaces to watch only namespaces a Role allows)")
