"""`eventpipe events --limit 0` over a large spool: peak RSS and seconds per output format.

    python -m bench.history_stream [--events 40000] [--message-bytes 5000] [--spool PATH]

Builds (or reuses, with --spool) a spool of `events` distinct Events whose messages are
`message-bytes` long (~200 MB of bodies by default), then runs the real `eventpipe events
--spool S --limit 0 -o OUTPUT` for json, yaml and table, each in a fresh parent process that
reads the child's peak RSS from getrusage(RUSAGE_CHILDREN). stdout goes to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from eventpipe.spool import Spool
from eventpipe.watch.normalize import to_record

REPO = Path(__file__).resolve().parent.parent
OUTPUTS = ("json", "yaml", "table")
_PROBE = """\
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.stdout.count(b"\\n"),
      time.perf_counter() - started)
"""


def event(i: int, message_bytes: int) -> dict[str, object]:
    """A kubelet-style Warning about Pod web-`i`, with a long message."""
    return {
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": f"web-{i}.17a0", "namespace": "default", "uid": f"uid-{i:08d}",
                     "resourceVersion": str(i + 1)},
        "involvedObject": {"kind": "Pod", "name": f"web-{i}", "namespace": "default"},
        "reason": "BackOff", "type": "Warning", "message": f"{i} " + "x" * message_bytes,
        "count": 1, "firstTimestamp": "2026-11-23T10:00:00Z",
        "lastTimestamp": "2026-11-23T10:00:00Z", "source": {"component": "kubelet"},
    }


def build_spool(path: Path, events: int, message_bytes: int) -> None:
    """Write `events` distinct Events into a new spool at `path`, 1,000 per commit."""
    async def build() -> None:
        spool = await Spool.open(path)
        try:
            for start in range(0, events, 1000):
                objs = [event(i, message_bytes) for i in range(start, min(events, start + 1000))]
                await spool.append([to_record(o, orjson.dumps(o)) for o in objs], stream="t",
                                   resource_version=None)
        finally:
            await spool.close()

    asyncio.run(build())


def peak_rss(spool: Path, output: str) -> tuple[float, int, float]:
    """(peak RSS in MiB, lines printed, seconds) of `eventpipe events --limit 0 -o output`."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, sys.executable, "-m", "eventpipe", "events", "--spool",
         str(spool), "--limit", "0", "-o", output],
        capture_output=True, text=True, cwd=REPO, timeout=1800, check=True)
    kib, lines, seconds = result.stdout.split()
    return int(kib) / 1024, int(lines), float(seconds)


def main(argv: list[str] | None = None) -> None:
    """Build the spool unless given, then print one line per output format."""
    parser = argparse.ArgumentParser(prog="python -m bench.history_stream",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--message-bytes", type=int, default=5_000)
    parser.add_argument("--spool", type=Path, default=None, help="reuse this spool")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        spool = args.spool or Path(folder) / "spool.db"
        if args.spool is None or not spool.exists():
            build_spool(spool, args.events, args.message_bytes)
        print(f"spool {spool.stat().st_size / 2**20:.0f} MiB")
        for output in OUTPUTS:
            rss, lines, seconds = peak_rss(spool, output)
            print(f"-o {output}: peak RSS {rss:.0f} MiB, {seconds:.1f} s, {lines} lines")


if __name__ == "__main__":
    main()
