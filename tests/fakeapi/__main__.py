"""Run the fake API server as its own process, for the benchmark and subprocess tests.

    python -m tests.fakeapi --port P --kubeconfig PATH [--corpus] [--burst N] [--rate N]

Prints the URL on stdout (one line, flushed) once listening, then serves until SIGTERM/SIGINT.
`--burst N` adds N synthetic Events (corpus copies with fresh uids) before the URL is printed,
so a watcher starts with a backlog; `--rate N` then keeps adding N Events per second, in ticks
of 10 ms, each tick one bulk write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator

from tests.fakeapi.convert import Obj
from tests.fakeapi.corpus import corpus_paths, synthetic, templates_from
from tests.fakeapi.server import FakeApiServer

_TICK = 0.01


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakeapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server here")
    parser.add_argument("--token", help="bearer token (default: random)")
    parser.add_argument("--corpus", action="store_true", help="load the shared Event corpus")
    parser.add_argument("--burst", type=int, default=0, help="synthetic Events added at start")
    parser.add_argument("--rate", type=float, default=0.0, help="synthetic Events per second")
    parser.add_argument("--bookmark-interval", type=float, default=None)
    return parser.parse_args(argv)


async def _produce(server: FakeApiServer, source: Iterator[Obj], rate: float) -> None:
    """Add `rate` Events/s in 10 ms ticks, catching up after slow ticks so the average holds.

    One tick never adds more than 100 ms worth, so a rate the process cannot sustain shows up
    as a lower rate rather than as a server too busy writing to serve its watchers.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    done = 0
    cap = max(1, int(rate * 0.1))
    while True:
        due = int((loop.time() - started) * rate) - done
        if due > cap:
            started += (due - cap) / rate  # forget what we could not produce in time
            due = cap
        if due > 0:
            done += server.add_many(next(source) for _ in range(due))
        await asyncio.sleep(_TICK)


async def serve(args: argparse.Namespace) -> None:
    """Start, announce the URL, serve until a stop signal."""
    server = FakeApiServer(
        token=args.token, host=args.host, port=args.port, bookmark_interval=args.bookmark_interval
    )
    if args.corpus:
        server.load_corpus()
    source = synthetic(templates_from(corpus_paths()))
    if args.burst:
        server.add_many(next(source) for _ in range(args.burst))
    await server.start()
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    print(server.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    producer = asyncio.create_task(_produce(server, source, args.rate)) if args.rate > 0 else None
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
