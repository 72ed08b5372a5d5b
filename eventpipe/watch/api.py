"""The two Event list/watch calls the watcher makes, over a kubernetes-asyncio ApiClient
(`eventpipe.kube.client.connect`).

The request goes through `ApiClient.call_api` (its auth, TLS and token refresh) with
`_preload_content=False`, so the hot path gets the raw aiohttp response and parses lines itself
(decoding into model objects is far slower than into dicts; see docs/performance.md). It is the
request the generated `CoreV1Api.list_event_for_all_namespaces` (and namespaced, and
`EventsV1Api`) makes, without importing that module: `core_v1_api` is 38,000 lines of generated
code, ~3 MiB resident, for two calls.
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


_QUERY_NAMES = {
    "allow_watch_bookmarks": "allowWatchBookmarks", "_continue": "continue", "limit": "limit",
    "resource_version": "resourceVersion", "timeout_seconds": "timeoutSeconds", "watch": "watch",
}
"""The list/watch parameters the watcher passes (the generated client's Python names) -> their
query names, in the generated client's order."""


def events_path(api_group: str, namespace: str) -> str:
    """The Event collection's path for `api_group` ("core" or "events.k8s.io"), in `namespace`
    or, for "", all namespaces (`{namespace}` is filled in by `call_api`)."""
    prefix = "/apis/events.k8s.io/v1" if api_group == "events.k8s.io" else "/api/v1"
    return f"{prefix}/namespaces/{{namespace}}/events" if namespace else f"{prefix}/events"


class KubeEventsApi:
    """`EventsApi` over kubernetes-asyncio for core/v1 or events.k8s.io/v1."""

    def __init__(self, api_client: client.ApiClient, *, api_group: str, namespace: str) -> None:
        self._client: Any = api_client
        self._api_group = api_group
        self._namespace = namespace
        self._path = events_path(api_group, namespace)
        self._path_params = {"namespace": namespace} if namespace else {}

    @property
    def api_group(self) -> str:
        """"core" or "events.k8s.io"."""
        return self._api_group

    @property
    def namespace(self) -> str:
        """The namespace watched; "" for all namespaces."""
        return self._namespace

    async def request(self, *, _request_timeout: Any = None, **params: Any
                      ) -> aiohttp.ClientResponse:
        """Issue the list/watch call and return the unread aiohttp response. `params` are the
        generated client's names (`resource_version`, `_continue`, ...); a value of None is
        left out, as there."""
        unknown = params.keys() - _QUERY_NAMES.keys()
        if unknown:
            raise TypeError(f"unexpected list/watch parameters: {', '.join(sorted(unknown))}")
        query = [(name, params[key]) for key, name in _QUERY_NAMES.items()
                 if params.get(key) is not None]
        resp = await self._client.call_api(
            self._path, "GET", path_params=self._path_params, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
            _preload_content=False, _request_timeout=_request_timeout)
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
