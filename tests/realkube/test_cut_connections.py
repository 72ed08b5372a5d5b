"""Cuts: a TCP proxy between eventpipe and the real API server drops every connection each
second while events are created in a burst; every version the direct raw watch saw arrives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

from tests.pipeline_harness import (
    child_processes,
    log_messages,
    read_lines,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane, write_kubeconfig
from tests.realkube.watching import keys, start_watching, watch


class CuttingProxy:
    """Forwards 127.0.0.1:port to the API server; `cut()` closes every open connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.cuts = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> int:
        """Listen on a free port; the port."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        """Drop every connection (mid-stream for open watches)."""
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        self.cuts += 1


async def test_nothing_lost_when_connections_are_cut(kube: ControlPlane, tmp_path: Path) -> None:
    namespace = f"cuts-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    proxy = CuttingProxy(kube.api_port)
    port = await proxy.start()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}",
                                  kube.pki.ca, kube.root / "admin.crt", kube.root / "admin.key")
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(kube, namespace, seen, ready))
    log = tmp_path / "eventpipe.log"
    total = 0
    async with child_processes() as procs:
        procs.append(await start_watching(write_config(tmp_path, kubeconfig=kubeconfig), log))
        await asyncio.wait_for(ready.wait(), 30)
        for batch in range(8):
            items = [{"apiVersion": "v1", "kind": "Event",
                      "metadata": {"name": f"burst-{batch}-{i}", "namespace": namespace},
                      "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
                      "reason": "Burst", "message": "m", "type": "Normal"} for i in range(25)]
            await asyncio.to_thread(kube.kubectl, "create", "-f", "-", input_text=json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": items}))
            total += len(items)
            proxy.cut()
            await asyncio.sleep(1)  # the cut cadence itself, not a wait for a result
        await wait_until(lambda: len(keys(seen, namespace)) == total, within=60,
                         what="the raw watch sees the burst")
        await wait_until(lambda: keys(read_lines(tmp_path / "events.jsonl"), namespace)
                         >= keys(seen, namespace), within=90,
                         what="every version through the cutting proxy")
    watcher.cancel()
    proxy.server.close()
    assert proxy.cuts == 8
    # The cuts hit live watches: each one failed a watch that eventpipe then resumed.
    assert log_messages(log).count("watch failed, retrying") >= 4
