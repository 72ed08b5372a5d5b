"""Static answers of the fake API server (discovery, /version) and the kubeconfig it hands out.

Clients probe `/version`, `/api` and `/apis` before they trust a server (and `kubectl` needs
them), so the fake answers them with the smallest documents that still parse as the real types.
The kubeconfig is what the real kubernetes_asyncio client loads: plain HTTP plus a bearer token.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.fakeapi.convert import Obj

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

VERSION: Obj = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-eventpipe-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(address: str) -> Obj:
    """GET /api."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_groups() -> Obj:
    """GET /apis: only the events.k8s.io group is served."""
    version = {"groupVersion": "events.k8s.io/v1", "version": "v1"}
    group = {"name": "events.k8s.io", "versions": [version], "preferredVersion": version}
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}


def resource_list(group_version: str) -> Obj:
    """GET /api/v1 or /apis/events.k8s.io/v1: the events resource."""
    resource = {
        "name": "events",
        "singularName": "event",
        "namespaced": True,
        "kind": "Event",
        "verbs": _VERBS,
        "shortNames": ["ev"],
    }
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [resource],
    }


def write_kubeconfig(
    path: Path | str, *, server: str, token: str, namespace: str = "default"
) -> Path:
    """Write a kubeconfig with one context pointing at `server` with bearer `token`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [
            {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}
        ],
        "current-context": "fake",
        "preferences": {},
    }
    target = Path(path)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target
