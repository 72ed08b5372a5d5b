"""Connect to the API server with kubernetes-asyncio.

kubernetes-asyncio handles kubeconfig, in-cluster config, exec plugins and token refresh; this
module picks the kubeconfig the way kubectl does and narrows the session's read buffer for the
watch (below).
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SERVICE_ACCOUNT_DIR_ENV = "EVENTPIPE_SERVICE_ACCOUNT_DIR"


def service_account_dir() -> Path:
    """Where the pod's service account is mounted (`token`, `ca.crt`, `namespace`):
    $EVENTPIPE_SERVICE_ACCOUNT_DIR, else the kubelet's fixed path. The override serves
    runtimes that mount it elsewhere and tests that run in-cluster mode outside a pod."""
    return Path(os.environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR)


def kubeconfig_path(explicit: str | None) -> str:
    """The kubeconfig to use: the given path, $KUBECONFIG, ~/.kube/config, or "" (in-cluster)."""
    path = explicit or os.environ.get("KUBECONFIG") or ""
    default = os.path.expanduser("~/.kube/config")
    if not path and os.path.exists(default):
        path = default
    return path


async def connect(kubeconfig: str | None) -> client.ApiClient:
    """An ApiClient from, in order: the given kubeconfig path, $KUBECONFIG, ~/.kube/config,
    the in-cluster service account ($KUBERNETES_SERVICE_HOST/PORT, the token and CA in
    `service_account_dir()`; the token file is re-read every minute, as projected tokens
    rotate)."""
    configuration = client.Configuration()
    path = kubeconfig_path(kubeconfig)
    if path:
        await config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        mounted = service_account_dir()
        InClusterConfigLoader(token_filename=str(mounted / "token"),
                              cert_filename=str(mounted / "ca.crt"),
                              ).load_and_set(configuration)
    api_client = client.ApiClient(configuration)
    limit_read_buffer(api_client)
    return api_client


# kubernetes-asyncio opens its aiohttp session with read_bufsize=2 MiB so that its own Watch
# (readline-based) can hold a 1.5 MiB object in one line; aiohttp buffers up to twice that before
# it stops reading the socket, so a watch that outruns the spool held ~4 MiB of unread stream
# (measured in the burst peak). Our watcher splits lines itself and reads in 256 KiB pieces
# (eventpipe.watch.watcher.WATCH_READ_BYTES), so it needs no large buffer: 256 KiB → at most
# 512 KiB buffered (smaller buffers pause and resume the socket more often, for no memory worth
# having).
WATCH_READ_BUFSIZE = 256 * 1024


def limit_read_buffer(api_client: client.ApiClient) -> None:
    """Lower the session's per-response read buffer.

    kubernetes-asyncio creates the session itself (`rest_client.pool_manager`) and offers no
    option for its `read_bufsize`, and aiohttp has no public setter once a session exists, so
    this sets the private attribute `ClientSession(read_bufsize=...)` stores. Two tests stand
    behind it (tests/test_watch_units.py): one fails when aiohttp or kubernetes-asyncio move that
    attribute, one checks the effect on a real watch through the response's public
    `get_read_buffer_limits()`."""
    session = getattr(api_client.rest_client, "pool_manager", None)
    if isinstance(session, aiohttp.ClientSession) and hasattr(session, "_read_bufsize"):
        session._read_bufsize = WATCH_READ_BUFSIZE
