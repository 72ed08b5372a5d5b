"""The Lease itself: which one (settings, defaults from the pod's environment) and its
get / create / replace through kubernetes-asyncio as plain dicts. The election protocol that
uses them is eventpipe.leader.elector.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client

from eventpipe.kube.client import service_account_dir
from eventpipe.leader.config import LeaderElectionConfig

Obj = dict[str, Any]


class LeaseError(Exception):
    """The API server answered a Lease request with something other than success or 409."""


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """Which Lease, who we are, and the three timings (seconds)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def from_config(cls, config: LeaderElectionConfig) -> LeaseSettings:
        """Settings with the pod's namespace and name filled in where the config left them."""
        return cls(name=config.leader_election_id,
                   namespace=config.namespace or default_namespace(),
                   identity=config.identity or default_identity(),
                   lease_duration=config.lease_duration, renew_deadline=config.renew_deadline,
                   retry_period=config.retry_period)


def default_namespace() -> str:
    """$POD_NAMESPACE, else the service account's namespace file, else "default"."""
    if namespace := os.environ.get("POD_NAMESPACE", "").strip():
        return namespace
    try:
        return (service_account_dir() / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def default_identity() -> str:
    """$POD_NAME, else hostname-pid (unique per process, as two replicas need)."""
    return os.environ.get("POD_NAME", "").strip() or f"{socket.gethostname()}-{os.getpid()}"


class KubeLeaseApi:
    """get / create / replace of one Lease through kubernetes-asyncio, as plain dicts."""

    def __init__(self, api_client: client.ApiClient, *, name: str, namespace: str,
                 request_timeout: float = 10.0) -> None:
        self._api: Any = client.CoordinationV1Api(api_client)
        self._name = name
        self._namespace = namespace
        self._timeout = request_timeout

    async def get(self) -> Obj | None:
        """The Lease, or None when there is none."""
        resp = await self._api.read_namespaced_lease(
            self._name, self._namespace, _preload_content=False, _request_timeout=self._timeout)
        return await _answer(resp, missing=404)

    async def create(self, body: Obj) -> Obj | None:
        """The created Lease, or None when another replica created it first (409)."""
        resp = await self._api.create_namespaced_lease(
            self._namespace, body, _preload_content=False, _request_timeout=self._timeout)
        return await _answer(resp, missing=409)

    async def replace(self, body: Obj) -> Obj | None:
        """The updated Lease, or None when its resourceVersion was stale (409)."""
        resp = await self._api.replace_namespaced_lease(
            self._name, self._namespace, body, _preload_content=False,
            _request_timeout=self._timeout)
        return await _answer(resp, missing=409)


async def _answer(resp: aiohttp.ClientResponse, *, missing: int) -> Obj | None:
    try:
        body = await resp.read()
    finally:
        resp.release()
    if resp.status == missing:
        return None
    if not 200 <= resp.status < 300:
        try:
            message = str(orjson.loads(body).get("message", ""))
        except (orjson.JSONDecodeError, AttributeError):
            message = body[:200].decode(errors="replace")
        raise LeaseError(f"HTTP {resp.status}: {message}")
    lease: Obj = orjson.loads(body)
    return lease
