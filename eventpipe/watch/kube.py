"""Connect to the API server with kubernetes-asyncio and expose the two Event list/watch calls.

kubernetes-asyncio handles kubeconfig, in-cluster config, exec plugins and token refresh; we only
use its generated list calls with `_preload_content=False` so the hot path gets the raw aiohttp
response and parses lines itself (decoding into model objects is far slower than into dicts;
see docs/performance.md).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio import client, config


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


def kubeconfig_path(explicit: str | None) -> str:
    """The kubeconfig to use: the given path, $KUBECONFIG, ~/.kube/config, or "" (in-cluster)."""
    path = explicit or os.environ.get("KUBECONFIG") or ""
    default = os.path.expanduser("~/.kube/config")
    if not path and os.path.exists(default):
        path = default
    return path


async def connect(kubeconfig: str | None) -> client.ApiClient:
    """An ApiClient from, in order: the given kubeconfig path, $KUBECONFIG, ~/.kube/config,
    the in-cluster service account."""
    configuration = client.Configuration()
    path = kubeconfig_path(kubeconfig)
    if path:
        await config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    api_client = client.ApiClient(configuration)
    limit_read_buffer(api_client)
    return api_client


# kubernetes-asyncio opens its aiohttp session with read_bufsize=2 MiB so that its own Watch
# (readline-based) can hold a 1.5 MiB object in one line, and aiohttp buffers up to twice that
# before it stops reading the socket. Our watcher splits lines itself and reads in
# WATCH_READ_BYTES pieces, so a buffer of that size bounds unread stream to twice it (smaller
# buffers pause and resume the socket more often, for no memory worth having; the measured
# effect is in docs/performance.md).
WATCH_READ_BUFSIZE = 256 * 1024


def limit_read_buffer(api_client: client.ApiClient) -> None:
    """Lower the session's per-response read buffer; aiohttp has no public setter after the
    session exists, so this sets the attribute `ClientSession(read_bufsize=...)` stores (a test
    checks the effect through the response's public `get_read_buffer_limits()`)."""
    session = getattr(api_client.rest_client, "pool_manager", None)
    if isinstance(session, aiohttp.ClientSession) and hasattr(session, "_read_bufsize"):
        session._read_bufsize = WATCH_READ_BUFSIZE
