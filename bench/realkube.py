"""Measurement: eventpipe against the real control plane (tests/realkube, `make kube`).

    python -m bench.realkube [--rates 50,100,200,400,800] [--seconds 15]

For each rate in turn, Events are created through the API (POST, as admin over TLS, at most
64 in flight, started in 10 ms ticks) in a namespace of their own for `--seconds`. Two
observers watch: a raw HTTP watch in this process (the reference: when the API server's watch
delivered each Event) and `eventpipe run`, one process for the whole run, writing to a file
receiver this process tails. Per step:

- the create rate achieved, against the rate asked for: the API server (with etcd, on the
  same two cores) sustains a rate when the creates keep up with it (≥ 95 %);
- watch → file latency per Event: when the tail saw the line in the file minus when the raw
  watch received the same Event, p50/p99/max; and create → file (POST started → file line);
- eventpipe's CPU share: its user+system CPU time over the step's wall time (1.0 = one core),
  and kube-apiserver's and etcd's, from /proc.

Every Event created must arrive in the file; a step that loses one fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import ssl
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from bench.common import WORK, LineTail, eventpipe, wait_until, write_config
from bench.latency import percentile
from tests.realkube import controlplane
from tests.realkube.watching import admin_ssl

DEFAULT_RATES = [50, 100, 200, 400, 800]
IN_FLIGHT = 64
TICK_S = 0.01
DRAIN_S = 60.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_body(namespace: str, name: str, sent: float) -> bytes:
    """A kubelet-like core/v1 Event, stamped with the time its POST starts."""
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"eventpipe.bench/sent-at": f"{sent:.6f}"}},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace,
                           "apiVersion": "v1", "uid": str(uuid.uuid4())},
        "reason": "BackOff", "type": "Warning", "count": 1,
        "message": f"Back-off restarting failed container app in pod {name}",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-12-01T10:00:00Z", "lastTimestamp": "2026-12-01T10:00:00Z"})


def client_ssl(root: Path) -> ssl.SSLContext:
    """TLS as the control plane's admin (its files in `root`)."""
    context = ssl.create_default_context(cafile=str(root / "ca.crt"))
    context.load_cert_chain(str(root / "admin.crt"), str(root / "admin.key"))
    return context


def creator(root: Path, server: str, namespace: str, rate: int, seconds: float,
            report: Path) -> None:
    """The creating side, in a process of its own (so its work does not delay the
    observers' clocks): writes {name: POST start} to `report` as JSON."""
    async def run() -> dict[str, float]:
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT + 4)
        async with aiohttp.ClientSession(connector=connector) as session:
            return await create_at(session, client_ssl(root), server, namespace, rate, seconds)

    report.write_bytes(orjson.dumps(asyncio.run(run())))


async def create_at(session: aiohttp.ClientSession, context: ssl.SSLContext, server: str,
                    namespace: str, rate: int, seconds: float) -> dict[str, float]:
    """POST `rate` × `seconds` Events at a steady rate; returns {name: POST start}. The
    rate achieved is what the POST starts show: a create starts only once one of the
    IN_FLIGHT before it has been answered."""
    url = f"{server}/api/v1/namespaces/{namespace}/events"
    slots = asyncio.Semaphore(IN_FLIGHT)
    started: dict[str, float] = {}
    total = int(rate * seconds)
    begin = time.monotonic()

    async def one(name: str) -> None:
        async with slots:
            sent = time.time()
            started[name] = sent
            async with session.post(url, data=event_body(namespace, name, sent), ssl=context,
                                    headers={"Content-Type": "application/json"}) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create {name}: {resp.status} {await resp.text()}")

    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        due = begin + i / rate
        if (delay := due - time.monotonic()) >= TICK_S:  # else it joins the current tick
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(f"bench-{i}")))
    await asyncio.gather(*tasks)
    return started


async def raw_watch(session: aiohttp.ClientSession, context: ssl.SSLContext, server: str,
                    namespace: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """The reference watch, all namespaces like eventpipe's: when each of `namespace`'s
    Events' ADDED arrived here."""
    base = f"{server}/api/v1/events"
    async with session.get(base, ssl=context) as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    async with session.get(f"{base}?watch=1&resourceVersion={rv}", ssl=context,
                           timeout=aiohttp.ClientTimeout(total=None)) as resp:
        ready.set()
        async for line in resp.content:
            item = orjson.loads(line)
            if item["type"] == "ADDED" and item["object"]["metadata"]["namespace"] == namespace:
                seen.setdefault(item["object"]["metadata"]["name"], time.time())


async def tail_file(tail: LineTail, namespace: str, arrived: dict[str, float],
                    want: int) -> None:
    """Poll the file receiver's output every 2 ms until `want` Events of `namespace` are in."""
    marker = f'"namespace":"{namespace}"'.encode()
    while len(arrived) < want:
        now = time.time()
        for line in tail.poll():
            if marker in line:
                arrived.setdefault(orjson.loads(line)["metadata"]["name"], now)
        await asyncio.sleep(0.002)


async def step(plane: controlplane.ControlPlane, tail: LineTail, pid: int, rate: int,
               seconds: float) -> dict[str, float]:
    """One rate: create, observe, measure (module docstring)."""
    namespace = f"bench-{rate}-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(plane.kubectl, "create", "namespace", namespace)
    context = admin_ssl(plane)
    watched: dict[str, float] = {}
    arrived: dict[str, float] = {}
    ready = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        watcher = asyncio.create_task(raw_watch(session, context, plane.server, namespace,
                                                watched, ready))
        await asyncio.wait_for(ready.wait(), 30)
        total = int(rate * seconds)
        tailer = asyncio.create_task(tail_file(tail, namespace, arrived, total))
        cpu = {name: cpu_seconds(proc.pid) for name, proc in plane.procs.items()}
        cpu_eventpipe = cpu_seconds(pid)
        begin = time.monotonic()
        report = plane.root / f"created-{namespace}.json"
        child = multiprocessing.get_context("spawn").Process(target=creator, args=(
            plane.root, plane.server, namespace, rate, seconds, report))
        child.start()
        await asyncio.to_thread(child.join)
        if child.exitcode != 0:
            raise RuntimeError(f"the creating process failed ({child.exitcode})")
        started: dict[str, float] = orjson.loads(report.read_bytes())
        await asyncio.wait_for(tailer, DRAIN_S)
        wall = time.monotonic() - begin
        eventpipe_cpu = (cpu_seconds(pid) - cpu_eventpipe) / wall
        apiserver_cpu = (cpu_seconds(plane.procs["kube-apiserver"].pid)
                         - cpu["kube-apiserver"]) / wall
        etcd_cpu = (cpu_seconds(plane.procs["etcd"].pid) - cpu["etcd"]) / wall
        watcher.cancel()
    missing = set(started) - set(arrived)
    if missing:
        raise RuntimeError(f"{len(missing)} created Events never reached the file")
    watch_to_file = [arrived[n] - watched[n] for n in started if n in watched]
    create_to_file = [arrived[n] - started[n] for n in started]
    return {
        "rate_asked": float(rate),
        "rate_created": (total - 1) / (max(started.values()) - min(started.values())),
        "watch_to_file_p50_ms": percentile(watch_to_file, 50) * 1000,
        "watch_to_file_p99_ms": percentile(watch_to_file, 99) * 1000,
        "watch_to_file_max_ms": max(watch_to_file) * 1000,
        "create_to_file_p50_ms": percentile(create_to_file, 50) * 1000,
        "create_to_file_p99_ms": percentile(create_to_file, 99) * 1000,
        "eventpipe_cpu_share": eventpipe_cpu,
        "apiserver_cpu_share": apiserver_cpu,
        "etcd_cpu_share": etcd_cpu,
        "events": float(total),
    }


async def _run_steps(plane: controlplane.ControlPlane, tail: LineTail, pid: int,
                     rates: list[int], seconds: float) -> list[dict[str, float]]:
    results = []
    for rate in rates:
        result = await step(plane, tail, pid, rate, seconds)
        print(render_step(result), flush=True)
        results.append(result)
    return results


def render_step(r: dict[str, float]) -> str:
    """One line per rate."""
    return (f"  {r['rate_asked']:>5.0f}/s asked, {r['rate_created']:>6.1f}/s created: "
            f"watch→file p50 {r['watch_to_file_p50_ms']:.0f} ms, p99 "
            f"{r['watch_to_file_p99_ms']:.0f} ms, max {r['watch_to_file_max_ms']:.0f} ms; "
            f"create→file p50 {r['create_to_file_p50_ms']:.0f} ms; CPU eventpipe "
            f"{r['eventpipe_cpu_share']:.0%}, kube-apiserver {r['apiserver_cpu_share']:.0%}, "
            f"etcd {r['etcd_cpu_share']:.0%}")


def sustained(results: list[dict[str, float]]) -> float:
    """The highest rate asked for whose creates kept up (≥ 95 %); 0 if none did."""
    kept = [r["rate_asked"] for r in results if r["rate_created"] >= 0.95 * r["rate_asked"]]
    return max(kept, default=0.0)


def watch_established(config: Path) -> bool:
    """Whether eventpipe's /readyz says its watch is open (so the first step is not
    measured against its start-up)."""
    port = yaml.safe_load(config.read_text())["http"]["port"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def measure(rates: list[int], seconds: float) -> dict[str, Any]:
    """Start the control plane and eventpipe, run every rate, stop everything."""
    missing = controlplane.missing_binaries()
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not built: run `make kube` (needs Go)")
    folder = WORK / "realkube"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "plane").mkdir(parents=True)
    plane = controlplane.start(folder / "plane")
    try:
        output = folder / "out.jsonl"
        config = write_config(folder, kubeconfig=plane.admin_kubeconfig,
                              spool=folder / "spool.db", output=output)
        tail = LineTail(output)
        with eventpipe(config, folder / "eventpipe.log") as proc:
            wait_until(lambda: watch_established(config), within=60, alive=proc,
                       what="eventpipe's watch established", every=0.1)
            try:
                steps = asyncio.run(_run_steps(plane, tail, proc.pid, rates, seconds))
            finally:
                tail.close()
    finally:
        plane.stop()
    return {"kube_version": controlplane.kube_version(), "seconds": seconds, "steps": steps,
            "sustained_rate": sustained(steps)}


def main(argv: list[str] | None = None) -> int:
    """Command line: run the steps and print one line per rate."""
    parser = argparse.ArgumentParser(prog="python -m bench.realkube", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                        help="comma-separated Events/s, one step each")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each step")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    result = measure(rates, args.seconds)
    print(f"control plane {result['kube_version']}: sustained "
          f"{result['sustained_rate']:.0f} Events/s created through the API")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
