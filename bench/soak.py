"""The soak: `eventpipe run` for half an hour at a steady rate, one receiver down in the middle.

    python -m bench.soak [--minutes 30] [--down-from 10] [--down-for 10] [--rate 1000]
                         [--sample-every 60] [--max-backoff S]

The fake API server (its own process) adds `rate` stamped Events/s once eventpipe's watch is
open, `rate × minutes × 60` in all, forgetting all but the newest two minutes of them so its
memory stays flat (`--retain`). eventpipe (default config otherwise) delivers every version to
a file receiver and to a webhook (`batch: true`) served by this process (bench/soak_hook.py),
which answers 503 from minute `down-from` for `down-for` minutes. Every `sample-every` seconds
the bench records eventpipe's VmRSS and CPU seconds, the spool's rows and the webhook's backlog
(spool head minus its cursor, both read from outside), and the watch → file latency of the
lines that arrived in that interval (the file is tailed every 5 ms; the send stamp is the fake
API server's clock, which is this machine's). The run ends once both receivers hold every
served version. Then: peak RSS (VmHWM), served vs delivered and duplicates per receiver, the
503s answered, and the drain: from the webhook's return to its first accepted batch, and to
the first batch whose newest event was current (≤ 1 s old; one receiver's events arrive in
spool order, so everything before it had arrived). `--max-backoff` sets the webhook's
`retry.maxBackoff` (default: eventpipe's own default), to compare drains.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    WORK,
    LineTail,
    cpu_seconds,
    eventpipe,
    fake_api,
    vm_hwm_mib,
    vm_rss_mib,
    write_config,
)
from bench.soak_hook import SoakHook
from bench.soak_probe import SoakProbe
from bench.soak_report import Interval, header, row, summary
from bench.soak_tally import VersionTally, stamp_of

START_RV = 1000
RETAIN_S = 120
POLL_S = 0.005
GRACE_S = 900.0
"""How long after the last event is served the bench waits for both receivers to hold all."""


@dataclass(frozen=True)
class SoakOptions:
    """The shape of one soak (minutes are floats so a test can run seconds)."""

    minutes: float = 30.0
    down_from: float = 10.0
    down_for: float = 10.0
    rate: int = 1_000
    sample_every: float = 60.0
    max_backoff: float | None = None

    @property
    def served(self) -> int:
        """Events the fake API server adds in all."""
        return int(self.rate * self.minutes * 60)


def _config(folder: Path, kubeconfig: Path, hook: SoakHook, options: SoakOptions) -> Path:
    webhook: dict[str, Any] = {"name": "hook", "webhook": {"endpoint": hook.url, "batch": True}}
    if options.max_backoff is not None:
        webhook["retry"] = {"maxBackoff": f"{options.max_backoff}s"}
    return write_config(folder, kubeconfig=kubeconfig, spool=folder / "spool.db",
                        output=folder / "out.jsonl", extra={
                            "route": {"routes": [{"match": [{"receiver": "dump"},
                                                            {"receiver": "hook"}]}]},
                            "receivers": [{"name": "dump", "file": {
                                "path": str(folder / "out.jsonl")}}, webhook]})


def _follow(tail: LineTail, file_tally: VersionTally, latencies: list[float]) -> None:
    """Count the file's new lines and their watch → file latency."""
    lines = tail.poll()
    now = time.time()
    for line in lines:
        rv, sent = stamp_of(orjson.loads(line))
        file_tally.add(rv)
        latencies.append(now - sent)


def run(options: SoakOptions, folder: Path) -> dict[str, Any]:
    """One soak in `folder` (emptied first); the per-interval samples and the totals."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    kubeconfig = folder / "kubeconfig"
    file_tally = VersionTally(START_RV + 1, options.served)
    hook = SoakHook(VersionTally(START_RV + 1, options.served))
    tail = LineTail(folder / "out.jsonl")
    probe = SoakProbe(folder / "spool.db", receiver="hook")
    intervals: list[Interval] = []
    args = ("--start-rv", str(START_RV), "--after-watch", "--stamp", "--rate", str(options.rate),
            "--rate-total", str(options.served), "--retain", str(options.rate * RETAIN_S))
    print(header(options.__dict__), flush=True)
    hook.start()
    try:
        with fake_api(kubeconfig, *args) as api, eventpipe(
                _config(folder, kubeconfig, hook, options), folder / "eventpipe.log") as proc:
            t0 = api.wait_mark("rate-start", within=120)
            down_at = t0 + options.down_from * 60
            up_at = down_at + options.down_for * 60
            deadline = t0 + options.minutes * 60 + GRACE_S
            latencies: list[float] = []
            next_sample, cpu_before = t0 + options.sample_every, cpu_seconds(proc.pid)
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"eventpipe exited ({proc.returncode})")
                _follow(tail, file_tally, latencies)
                now = time.time()
                if hook.down_at is None and now >= down_at:
                    hook.down()
                elif hook.is_down and now >= up_at:
                    hook.up()
                done = file_tally.complete() and hook.tally.complete() and not hook.is_down
                if now >= next_sample or done:
                    cpu = cpu_seconds(proc.pid)
                    interval = Interval.sample(
                        end_s=now - t0, rss_mib=vm_rss_mib(proc.pid), cpu_s=cpu - cpu_before,
                        probe=probe, hook=hook, file_tally=file_tally, latencies=latencies,
                        load=os.getloadavg()[0])
                    intervals.append(interval)
                    print(row(interval.__dict__), flush=True)
                    latencies, cpu_before = [], cpu
                    next_sample += options.sample_every
                if done:
                    break
                if now > deadline:
                    raise RuntimeError(f"not delivered within {GRACE_S:.0f} s of the end: file "
                                       f"{file_tally.summary()}, hook {hook.tally.summary()}")
                time.sleep(POLL_S)
            peak = vm_hwm_mib(proc.pid)
            total_cpu = cpu_seconds(proc.pid)
            api.wait_mark("rate-end", within=30)
    finally:
        hook.stop()
        tail.close()
        probe.close()
    return _totals(options, intervals, hook, file_tally, peak, total_cpu)


def _since_up(hook: SoakHook, at: float | None) -> float | None:
    return None if at is None or hook.up_at is None else at - hook.up_at


def _totals(options: SoakOptions, intervals: list[Interval], hook: SoakHook,
            file_tally: VersionTally, peak: float, total_cpu: float) -> dict[str, Any]:
    return {
        "options": options.__dict__, "intervals": [i.__dict__ for i in intervals],
        "peak_rss_mib": peak, "cpu_s": total_cpu,
        "cpu_us_per_event": total_cpu / options.served * 1e6,
        "file": file_tally.summary(), "hook": hook.tally.summary(),
        "hook_503s": hook.refused, "hook_requests": hook.requests,
        "first_accept_after_return_s": _since_up(hook, hook.first_accepted_after_up),
        "drain_s": _since_up(hook, hook.caught_up_at),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = SoakOptions()
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--down-from", type=float, default=defaults.down_from,
                        help="minute the webhook starts answering 503")
    parser.add_argument("--down-for", type=float, default=defaults.down_for,
                        help="minutes it stays down")
    parser.add_argument("--rate", type=int, default=defaults.rate, help="events/s")
    parser.add_argument("--sample-every", type=float, default=defaults.sample_every,
                        help="seconds between samples")
    parser.add_argument("--max-backoff", type=float, default=None,
                        help="the webhook's retry.maxBackoff in seconds (default: eventpipe's)")
    parser.add_argument("--json", type=Path, default=WORK.parent / "soak.json",
                        help="where the samples and totals are written")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> SoakOptions:
    """The soak options among parsed command-line arguments."""
    return SoakOptions(minutes=args.minutes, down_from=args.down_from, down_for=args.down_for,
                       rate=args.rate, sample_every=args.sample_every,
                       max_backoff=args.max_backoff)


def main(argv: list[str] | None = None) -> int:
    """Run one soak, print its table, write bench/out/soak.json."""
    args = parse_args(argv)
    options = options_from(args)
    folder = WORK / args.json.stem  # runs writing different files may run side by side
    result = run(options, folder)  # a failed run leaves its folder (eventpipe.log) to read
    shutil.rmtree(folder, ignore_errors=True)
    print(summary(result))
    args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
