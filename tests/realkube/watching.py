"""An independent watcher for the real-cluster tests: a raw HTTP watch with aiohttp, none of
eventpipe's code, so what it saw is the reference the file receiver is compared with."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.pipeline_harness import http_get, start_subprocess, wait_started, wait_until_async
from tests.realkube.controlplane import ControlPlane


def admin_ssl(kube: ControlPlane) -> ssl.SSLContext:
    """TLS as cluster admin, trusting only the fixture's CA."""
    context = ssl.create_default_context(cafile=str(kube.pki.ca))
    context.load_cert_chain(str(kube.root / "admin.crt"), str(kube.root / "admin.key"))
    return context


async def watch(kube: ControlPlane, namespace: str, seen: list[dict[str, Any]],
                ready: asyncio.Event, *, api: str = "api/v1",
                deleted: list[dict[str, Any]] | None = None) -> None:
    """Raw watch of the namespace's Events (core/v1, or `api="apis/events.k8s.io/v1"`) from
    now on, appending each added or modified object (and each deleted one to `deleted`)."""
    base = f"{kube.server}/{api}/namespaces/{namespace}/events"
    async with aiohttp.ClientSession() as session:
        async with session.get(base, ssl=admin_ssl(kube)) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        async with session.get(f"{base}?watch=1&resourceVersion={rv}", ssl=admin_ssl(kube),
                               timeout=aiohttp.ClientTimeout(total=None)) as resp:
            ready.set()
            async for line in resp.content:
                item = orjson.loads(line)
                if item["type"] in ("ADDED", "MODIFIED"):
                    seen.append(item["object"])
                elif item["type"] == "DELETED" and deleted is not None:
                    deleted.append(item["object"])


async def start_watching(config: Path, log: Path, *, env: dict[str, str] | None = None
                         ) -> asyncio.subprocess.Process:
    """`eventpipe run --config` as a child (with `env` as its environment, if given),
    returned once its /readyz says the watch is established (so events created after this
    are seen as they change, not only relisted)."""
    proc = await start_subprocess(config, log=log, env=env)
    port = await wait_started(proc, log, within=60)

    async def watching() -> bool:
        return (await http_get(port, "/readyz"))[0] == 200

    await wait_until_async(watching, within=60, what="eventpipe's watch established")
    return proc


def keys(events: list[dict[str, Any]], namespace: str) -> set[tuple[str, str]]:
    """(uid, resourceVersion) of the namespace's events."""
    return {(e["metadata"]["uid"], e["metadata"]["resourceVersion"]) for e in events
            if e["metadata"].get("namespace") == namespace}
