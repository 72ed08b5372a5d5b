"""The minimal durable reference of issue 16, as its own process: what watching Events into a
durable store costs with nothing else around it.

    python -m bench.reference --kubeconfig KC --db PATH [--output PATH] [--batch 500]

It opens the same watch on the same API server the way eventpipe does (aiohttp, the bearer
token of the kubeconfig, a LIST for the starting resourceVersion, then WATCH with bookmarks;
reads of at most 256 KiB through a 256 KiB response buffer, eventpipe's `watch.readBufferSize`
and `kube.client.WATCH_READ_BUFSIZE`), splits lines, parses each with orjson and inserts
(uid, resourceVersion, the object as served) into one SQLite table (WAL,
`synchronous=FULL`), one transaction per `--batch` events, or sooner when a read comes back
short (the stream is drained: nothing would join the batch now). With `--output` each
committed batch is then appended to a JSON-lines file, one write per batch. No indexes beyond
the rowid, no occurrence counting, no metrics, no HTTP server, no asyncio tasks beside the
read loop: the bar eventpipe's ingest (watch → committed spool) and end to end (→ file) are
held against, measured the same way from outside (`bench/ingest.py`).

It imports nothing of eventpipe, so its memory is what this work needs. It prints `watching`
once the watch stream is open and runs until the stream ends or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sqlite3
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
import yaml

READ_BYTES = 256 * 1024
BATCH = 500
# Where the object starts in a line as kube-apiserver writes it: {"type":"ADDED","object":{...}}
_OBJECT_AT = {kind: len(b'{"type":"%s","object":' % kind) for kind in (b"ADDED", b"MODIFIED")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--db", required=True, help="SQLite file to create")
    parser.add_argument("--output", help="append each committed batch to this file")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per transaction")
    return parser.parse_args(argv)


def server_and_token(kubeconfig: Path) -> tuple[str, str]:
    """The current context's server URL and bearer token."""
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in config["contexts"]
                   if c["name"] == config["current-context"])
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    return cluster["server"].rstrip("/"), user["token"]


def open_store(path: Path) -> sqlite3.Connection:
    """A fresh table of (seq, uid, resource_version, body), WAL, synchronous=FULL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, uid TEXT NOT NULL, "
                 "resource_version TEXT NOT NULL, body BLOB NOT NULL)")
    return conn


class Store:
    """Batched inserts, and the committed batch appended to a file when one is given."""

    def __init__(self, conn: sqlite3.Connection, output: IO[bytes] | None) -> None:
        self._conn = conn
        self._output = output
        self.rows: list[tuple[str, str, bytes]] = []

    def add(self, line: bytes) -> None:
        """Parse one watch line; an Event version becomes a pending row."""
        message = orjson.loads(line)
        start = _OBJECT_AT.get(message["type"].encode())
        if start is None:  # BOOKMARK
            return
        meta = message["object"]["metadata"]
        self.rows.append((meta["uid"], meta["resourceVersion"], line[start:-1]))

    def commit(self) -> None:
        """One transaction for the pending rows, then one file write for them."""
        if not self.rows:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events (uid, resource_version, body) VALUES (?, ?, ?)",
                         self.rows)
        conn.execute("COMMIT")
        if self._output is not None:
            self._output.write(b"\n".join(row[2] for row in self.rows) + b"\n")
            self._output.flush()
        self.rows = []


async def watch(server: str, token: str, store: Store, batch: int) -> None:
    """LIST for the resourceVersion, then WATCH from it until the stream ends."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, read_bufsize=READ_BYTES) as session:
        async with session.get(f"{server}/api/v1/events", params={"limit": "500"}) as resp:
            resp.raise_for_status()
            rv = orjson.loads(await resp.read())["metadata"]["resourceVersion"]
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                  "timeoutSeconds": "3600"}
        async with session.get(f"{server}/api/v1/events", params=params,
                               timeout=aiohttp.ClientTimeout(total=None)) as resp:
            resp.raise_for_status()
            print("watching", flush=True)
            pending = b""
            async for chunk in resp.content.iter_chunked(READ_BYTES):
                drained = len(chunk) < READ_BYTES
                if pending:
                    chunk = pending + chunk
                lines = chunk.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    store.add(line)
                if len(store.rows) >= batch or drained:
                    store.commit()
            if pending.strip():
                store.add(pending)
            store.commit()


async def watch_until_stopped(kubeconfig: Path, store: Store, batch: int) -> None:
    """Run the watch until it ends or a stop signal arrives."""
    server, token = server_and_token(kubeconfig)
    task = asyncio.ensure_future(watch(server, token, store, batch))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(Path(args.output).open("ab")) if args.output else None
        conn = open_store(Path(args.db))
        stack.callback(conn.close)
        asyncio.run(watch_until_stopped(Path(args.kubeconfig), Store(conn, output), args.batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
