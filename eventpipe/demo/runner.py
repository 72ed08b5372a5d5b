"""`eventpipe demo`: the whole pipeline against a simulated cluster, with a live summary.

Nothing is mocked on eventpipe's side: the simulated cluster is reached over HTTP through a
generated kubeconfig by the real kubernetes-asyncio client, and the Pipeline is the one
`eventpipe run` starts (spool, watcher, sink workers, /metrics). Everything the demo writes
stays in its folder (default ./eventpipe-demo): kubeconfig, spool.db, events.jsonl.

`--receivers FILE` adds real sinks: the file's `receivers` and `route` are merged into the demo
config (the file receiver stays; the file's route becomes a sub-route beside the demo's), and
its `clusterName` is used if set. Its other keys are ignored: the demo owns spool, watch, http.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from eventpipe.config import Config, ConfigError, load_config
from eventpipe.config.models import validate_config
from eventpipe.demo.cluster import SimulatedCluster
from eventpipe.demo.sample import load_sample
from eventpipe.demo.scenario import Scenario
from eventpipe.demo.summary import Summary

if TYPE_CHECKING:
    from eventpipe.app import Pipeline

DEMO_RECEIVER = "demo-file"


@dataclass(frozen=True)
class DemoOptions:
    """What `eventpipe demo` was asked for."""

    directory: Path = Path("eventpipe-demo")
    """Folder for the kubeconfig, the spool and the file receiver's output."""
    rate: float = 20.0
    """Event versions the simulated cluster writes per second."""
    port: int = 2112
    """Port of /metrics, /healthz, /readyz (0 = any free port)."""
    receivers_file: Path | None = None
    """A config whose `receivers` and `route` are added to the demo's."""
    duration: float | None = None
    """Stop by itself after this many seconds (None = until Ctrl-C)."""
    preload: int = 50
    """Events the cluster already holds when eventpipe starts (they arrive by the LIST)."""
    seed: int | None = None
    """Seed of the scenario's random choices (None = different every run)."""


def demo_config(options: DemoOptions, extra: Config | None = None) -> Config:
    """The demo's Config, with `extra`'s receivers and route merged in."""
    folder = options.directory
    data: dict[str, Any] = {
        "clusterName": (extra.cluster_name if extra else "") or "demo",
        "logLevel": "warn",
        "logFormat": "pretty",
        "spool": {"path": str(folder / "spool.db"), "historyWindow": "1h",
                  "retentionInterval": "10s"},
        "http": {"address": "127.0.0.1", "port": options.port},
        "shutdownTimeout": "5s",
        "receivers": [{"name": DEMO_RECEIVER,
                       "file": {"path": str(folder / "events.jsonl")}}],
        "route": {"routes": [{"match": [{"receiver": DEMO_RECEIVER}]}]},
    }
    if extra is not None:
        data["receivers"] += extra.receivers  # validated models are taken as they are
        data["route"]["routes"].append(extra.route)
    try:
        return validate_config(data)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))
        raise ConfigError(f"cannot merge into the demo config: {problems}",
                          source=str(options.receivers_file or "demo")) from None


async def run_demo(options: DemoOptions, *, out: TextIO, tty: bool) -> int:
    """Run the demo until Ctrl-C/SIGTERM or `options.duration`; returns the exit code."""
    extra = load_config(options.receivers_file) if options.receivers_file else None
    config = demo_config(options, extra)
    options.directory.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, stop.set)  # not possible off the main thread
            handled.append(sig)
    timer = (loop.call_later(options.duration, stop.set) if options.duration is not None
             else None)
    try:
        return await _run(options, config, stop, out=out, tty=tty)
    finally:
        if timer is not None:
            timer.cancel()
        for sig in handled:
            loop.remove_signal_handler(sig)


async def _run(options: DemoOptions, config: Config, stop: asyncio.Event, *, out: TextIO,
               tty: bool) -> int:
    from eventpipe.app import Pipeline  # heavy imports only when the demo runs

    async with SimulatedCluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(options.directory / "kubeconfig")
        scenario = Scenario(cluster, load_sample(), rate=options.rate, seed=options.seed)
        scenario.preload(options.preload)
        pipeline = Pipeline(config, kubeconfig=str(kubeconfig))
        running = asyncio.create_task(pipeline.run(stop), name="pipeline")
        writing = asyncio.create_task(scenario.run(), name="demo-cluster")
        summary = Summary(metrics=pipeline.metrics,
                          receivers=[r.name for r in config.receivers],
                          spool_path=Path(config.spool.path), cluster=cluster,
                          scenario=scenario, out=out, tty=tty)
        try:
            await _announce(pipeline, running, options, config, out)
            while not running.done():
                await asyncio.wait([running], timeout=1.0)
                if not running.done():
                    summary.show()
            code = running.result()
        except OSError as exc:  # the metrics port in use, the folder not writable
            out.write(f"eventpipe demo: {exc}\n")
            return 1
        finally:
            stop.set()
            writing.cancel()
            await asyncio.gather(writing, running, return_exceptions=True)
        summary.show()
        agents = ", ".join(sorted(a for a in cluster.user_agents if a)) or "none"
        out.write(f"simulated cluster served {cluster.requests['list']} list and "
                  f"{cluster.requests['watch']} watch requests (client: {agents})\n"
                  f"events: {options.directory / 'events.jsonl'}   spool: {config.spool.path}\n"
                  f"next: eventpipe spool stats --spool {config.spool.path}\n")
        return code


async def _announce(pipeline: Pipeline, running: asyncio.Task[int], options: DemoOptions,
                    config: Config, out: TextIO) -> None:
    """Print where things are once the pipeline's HTTP server is bound (its port may be 0)."""
    # Pipeline has no "started" signal; its `http` attribute appears once the port is bound.
    while getattr(pipeline, "http", None) is None and not running.done():
        await asyncio.wait([running], timeout=0.05)
    if running.done():
        running.result()  # raises the startup error
        return
    names = ", ".join(r.name for r in config.receivers)
    out.write(f"eventpipe demo: simulated cluster at {options.rate:g} events/s, "
              f"receivers: {names}\n"
              f"metrics: http://127.0.0.1:{pipeline.http.port}/metrics\n"
              f"folder: {options.directory}   (Ctrl-C to stop)\n")
    out.flush()
