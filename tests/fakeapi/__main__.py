"""Run the fake API server as its own process, for the benchmark and subprocess tests.

    python -m tests.fakeapi --port P --kubeconfig PATH [--corpus] [--burst N] [--rate N]

Prints the URL on stdout (one line, flushed) once listening, then serves until SIGTERM/SIGINT.
`--burst N` adds N synthetic Events (corpus copies with fresh uids) before the URL is printed,
so a watcher starts with a backlog; `--rate N` then keeps adding N Events per second, in ticks
of 10 ms, each tick one bulk write.

For the benchmark (bench/), all off by default:
`--start-rv R` starts the revision counter at R (as if history up to R were compacted), so
resourceVersions continue above those of a pre-filled spool. `--after-watch` holds `--rate`
until the first watch stream is open; `--rate-total N` stops it after N Events and prints
`rate-end <epoch>`. `--watch-burst N` prepares N Events up front and, once the first watch is
open, adds them as fast as the server can (chunks of 2,048, yielding to the streams between
chunks), printing `burst-start <epoch>` before the first and `burst-end <epoch>` after the last.
`--pods N` creates N Pods (labelled, on 100-pod Nodes, 10 per ReplicaSet of a Deployment) and
makes every `--watch-burst` and `--rate` Event about one of them, round robin (the enrichment
and memory benchmarks);
`--after-object-watches N` holds the burst until N object watches are open (the caches synced).
`--retain N` keeps only the newest N revisions (history and live Events) while `--rate`
runs, so an hour-long stream does not hold every Event in memory; `--rate` prints
`rate-start <epoch>` when it starts adding.
`--stamp` writes each Event's add time (epoch seconds) into the annotation
`eventpipe.bench/sent-at`, so a reader of the output can compute end-to-end latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterable, Iterator

from tests.fakeapi.convert import Obj
from tests.fakeapi.corpus import corpus_paths, synthetic, templates_from
from tests.fakeapi.server import FakeApiServer

_TICK = 0.01
_BURST_CHUNK = 2048
STAMP_ANNOTATION = "eventpipe.bench/sent-at"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakeapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server here")
    parser.add_argument("--token", help="bearer token (default: random)")
    parser.add_argument("--corpus", action="store_true", help="load tests/corpus")
    parser.add_argument("--burst", type=int, default=0, help="synthetic Events added at start")
    parser.add_argument("--rate", type=float, default=0.0, help="synthetic Events per second")
    parser.add_argument("--bookmark-interval", type=float, default=None)
    parser.add_argument("--start-rv", type=int, default=0,
                        help="first resourceVersion minus one (history below it compacted)")
    parser.add_argument("--after-watch", action="store_true",
                        help="hold --rate until the first watch stream is open")
    parser.add_argument("--rate-total", type=int, default=0,
                        help="stop --rate after this many Events (prints 'rate-end T')")
    parser.add_argument("--watch-burst", type=int, default=0,
                        help="Events added as fast as possible once the first watch is open")
    parser.add_argument("--stamp", action="store_true",
                        help=f"annotate each Event with its add time ({STAMP_ANNOTATION})")
    parser.add_argument("--after-object-watches", type=int, default=0,
                        help="hold the burst until this many object watches are open")
    parser.add_argument("--retain", type=int, default=0,
                        help="while --rate runs, forget all but the newest N revisions")
    parser.add_argument("--pods", type=int, default=0,
                        help="create N pods with owners and nodes; burst Events are about them")
    return parser.parse_args(argv)


def add_pods(server: FakeApiServer, n: int) -> list[Obj]:
    """N Pods in namespace `bench`, 10 per ReplicaSet of a Deployment, 100 per Node; their
    Event references."""
    objects = server.objects
    refs = []
    owner: Obj | None = None
    for i in range(n):
        if i % 10 == 0:
            app = f"app-{i // 10}"
            dep = objects.add("Deployment", app, namespace="bench", labels={"app": app})
            owner = objects.add("ReplicaSet", f"{app}-5d4f", namespace="bench", owner=dep)
        if i % 100 == 0:
            objects.add("Node", f"node-{i // 100}", labels={"zone": f"z{i // 1000}"})
        pod = objects.add("Pod", f"{app}-5d4f-{i:05d}", namespace="bench", owner=owner,
                          node=f"node-{i // 100}",
                          labels={"app": app, "pod-template-hash": "5d4f", "tier": "web"})
        refs.append(objects.reference(pod))
    return refs


def about_pods(events: Iterable[Obj], refs: list[Obj]) -> Iterator[Obj]:
    """`events` re-pointed at `refs`, round robin."""
    for i, event in enumerate(events):
        ref = refs[i % len(refs)]
        yield {**event, "involvedObject": ref,
               "metadata": {**event["metadata"], "namespace": ref["namespace"]}}


def _announce(what: str) -> None:
    print(f"{what} {time.time():.6f}", flush=True)


def stamped(events: Iterable[Obj]) -> Iterator[Obj]:
    """`events` with the time each is taken written into an annotation (copies metadata)."""
    for event in events:
        meta = dict(event.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               STAMP_ANNOTATION: f"{time.time():.6f}"}
        yield {**event, "metadata": meta}


async def _burst(server: FakeApiServer, events: list[Obj], stamp: bool) -> None:
    """Add `events` in chunks, yielding between chunks so the watch streams keep flowing."""
    _announce("burst-start")
    for i in range(0, len(events), _BURST_CHUNK):
        chunk = events[i : i + _BURST_CHUNK]
        server.add_many(stamped(chunk) if stamp else chunk)
        await asyncio.sleep(0)
    _announce("burst-end")


async def _produce(server: FakeApiServer, source: Iterator[Obj], rate: float,
                   total: int | None = None, retain: int = 0) -> None:
    """Add `rate` Events/s in 10 ms ticks, catching up after slow ticks so the average holds.

    One tick never adds more than 100 ms worth, so a rate the process cannot sustain shows up
    as a lower rate rather than as a server too busy writing to serve its watchers. With
    `retain`, once twice that many revisions are held the oldest are forgotten (a pass over
    the live Events every `retain` writes, so the cost per Event stays constant).
    """
    _announce("rate-start")
    store = server.store
    loop = asyncio.get_running_loop()
    started = loop.time()
    done = 0
    cap = max(1, int(rate * 0.1))
    while total is None or done < total:
        due = int((loop.time() - started) * rate) - done
        if due > cap:
            started += (due - cap) / rate  # forget what we could not produce in time
            due = cap
        if total is not None:
            due = min(due, total - done)
        if due > 0:
            done += server.add_many(next(source) for _ in range(due))
            if retain and store.rv - store.base >= 2 * retain:
                store.forget(store.rv - retain)
        await asyncio.sleep(_TICK)
    _announce("rate-end")


async def _after_watch(server: FakeApiServer, source: Iterator[Obj], args: argparse.Namespace,
                       burst: list[Obj]) -> None:
    """The benchmark's producers: wait for a watcher if asked, then burst and/or rate."""
    if args.after_watch or burst:
        await server.wait_for_watchers(1, within=365 * 86400.0)
        _announce("watch-open")
    if args.after_object_watches:  # the metadata caches list first, then watch: synced
        await server.wait_for(lambda: len(server.objects.streams) >= args.after_object_watches,
                              within=365 * 86400.0)
    tasks = []
    if burst:
        tasks.append(asyncio.create_task(_burst(server, burst, args.stamp)))
    if args.rate > 0:
        feed = stamped(source) if args.stamp else source
        tasks.append(asyncio.create_task(
            _produce(server, feed, args.rate, args.rate_total or None, args.retain)))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _bench_mode(args: argparse.Namespace) -> bool:
    return bool(args.after_watch or args.rate_total or args.watch_burst or args.stamp
                or args.retain)


async def serve(args: argparse.Namespace) -> None:
    """Start, announce the URL, serve until a stop signal."""
    server = FakeApiServer(
        token=args.token, host=args.host, port=args.port, bookmark_interval=args.bookmark_interval
    )
    if args.start_rv:
        server.store.rv = server.store.base = args.start_rv
    if args.corpus:
        server.load_corpus()
    source = synthetic(templates_from(corpus_paths()))
    if args.burst:
        server.add_many(next(source) for _ in range(args.burst))
    if args.pods:
        source = about_pods(source, add_pods(server, args.pods))
    burst = [next(source) for _ in range(args.watch_burst)]
    await server.start()
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    print(server.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    producer: asyncio.Task[None] | None = None
    if _bench_mode(args):
        producer = asyncio.create_task(_after_watch(server, source, args, burst))
    elif args.rate > 0:
        producer = asyncio.create_task(_produce(server, source, args.rate))
    try:
        await stop.wait()
    finally:
        if producer is not None:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
