"""Writes the event stream into the real control plane (tests/realkube/controlplane.py) as
cluster admin, over one kept-alive HTTPS connection, recording every version it served."""

from __future__ import annotations

import datetime as dt
import http.client
import ssl
from typing import Any

import orjson

from bench.peers.sink import token
from tests.realkube.controlplane import ControlPlane

# The objects the events are about. They exist, as a running workload's do, so resmo's
# involved-object lookup (on by default) is answered from its cache after the first of each.
OBJECTS = 10


def _stamp(age_s: float) -> str:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class EventWriter:
    """Creates and updates core/v1 Events in one namespace; `served` holds one token per
    version the API server accepted (a create is count 1, each update one more)."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        context = ssl.create_default_context(cafile=str(plane.pki.ca))
        context.load_cert_chain(str(plane.root / "admin.crt"), str(plane.root / "admin.key"))
        self._conn = http.client.HTTPSConnection("127.0.0.1", plane.api_port, context=context,
                                                 timeout=30)
        self.namespace = namespace
        self.served: set[str] = set()
        self._counts: dict[str, int] = {}
        self._send("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for i in range(OBJECTS):
            self._send("POST", f"/api/v1/namespaces/{namespace}/configmaps", {
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}})

    def _send(self, method: str, path: str, body: dict[str, Any],
              content_type: str = "application/json") -> None:
        self._conn.request(method, path, orjson.dumps(body), {"Content-Type": content_type})
        resp = self._conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")

    def create(self, name: str, *, age_s: float = 0.0) -> None:
        """A new Event (count 1) whose timestamps lie `age_s` seconds in the past."""
        stamp = _stamp(age_s)
        self._send("POST", f"/api/v1/namespaces/{self.namespace}/events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap",
                               "name": f"cm-{len(self._counts) % OBJECTS}",
                               "namespace": self.namespace},
            "reason": "PeersBench", "message": token(name, 1), "type": "Normal", "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp,
            "source": {"component": "peers-bench"}})
        self._counts[name] = 1
        self.served.add(token(name, 1))

    def bump(self, name: str) -> None:
        """The next version of `name`: count + 1 and lastTimestamp now, as a recorder merges
        a repeated event."""
        count = self._counts[name] + 1
        self._send("PATCH", f"/api/v1/namespaces/{self.namespace}/events/{name}",
                   {"count": count, "message": token(name, count), "lastTimestamp": _stamp(0)},
                   "application/merge-patch+json")
        self._counts[name] = count
        self.served.add(token(name, count))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
