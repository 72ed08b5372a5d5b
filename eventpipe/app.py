"""`eventpipe run`: wire config → spool → watchers → sink workers → HTTP, and shut down cleanly.

Shutdown order (SIGTERM): stop the watches, commit everything the writer holds, let each sink
worker finish the batch in flight within `shutdownTimeout`, close the spool, exit 0. Nothing
acked is lost and nothing committed is forgotten; a worker cut off mid-batch repeats that batch
on the next start (at-least-once).

With `leaderElection.enabled` the HTTP server runs from the start (a standby is ready, so
rollouts proceed) and the watchers and sink workers start only once the Lease is ours. A leader
that cannot renew within renewDeadline cancels its watchers and workers at once (a batch in
flight repeats later) and exits 1, so Kubernetes restarts it as a standby: restarting the
pipeline in-process would buy nothing a container restart does not. On SIGTERM the leader keeps
renewing through the normal shutdown, then releases the Lease so a standby need not wait.

Anything else that ends a run for good is a `FatalError` (eventpipe.fatal): one error line
names it, the shutdown is the same, and the exit code says which kind it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from eventpipe import fatal
from eventpipe.config import Config
from eventpipe.core.collector import freeze_long_lived
from eventpipe.core.tasks import (
    EXIT_CONFIG,
    EXIT_LEADERSHIP_LOST,
    EXIT_STOPPED,
    FatalError,
    PipelineTasks,
    cancel_all,
    first_of,
    supervise,
    time_left,
)
from eventpipe.delivery.driver import Delivery, NewData, SinkWorker
from eventpipe.delivery.settings import delivery_settings
from eventpipe.enrich import Enricher, InformerSettings, build_enricher
from eventpipe.memory import Malloc
from eventpipe.metrics import Metrics
from eventpipe.routing import compile_route
from eventpipe.server.http import HttpServer
from eventpipe.sinks.registry import build_sink
from eventpipe.spool import Spool, SpoolFullError, disk
from eventpipe.spool.writer import SpoolWriter
from eventpipe.watch.api import KubeEventsApi
from eventpipe.watch.streams import stream_name
from eventpipe.watch.watcher import Watcher, WatchSettings

if TYPE_CHECKING:
    from eventpipe.leader.elector import LeaderElector

log = logging.getLogger("eventpipe.app")


def warn_unimplemented(config: Config) -> None:
    """resmo keys this version accepts (so configs load) but does not act on yet: say so."""
    if config.throttle_period is not None:
        log.warning("throttlePeriod is deprecated in resmo and ignored by eventpipe")


class Pipeline:
    """One running eventpipe: build with a validated Config, then `await run(stop)`."""

    def __init__(self, config: Config, *, kubeconfig: str | None = None,
                 http_port: int | None = None) -> None:
        self.config = config
        self.metrics = Metrics(prefix=config.metrics_name_prefix, cluster=config.cluster_name,
                               series_ttl=config.metrics.series_ttl,
                               max_series=config.metrics.max_series,
                               object_name_label=config.metrics.object_name_label)
        self._kubeconfig = kubeconfig or config.kubeconfig
        self._http_port = config.http.port if http_port is None else http_port
        self.watchers: list[Watcher] = []
        self.workers: list[SinkWorker] = []
        self.enricher: Enricher | None = None
        self._spool_ok = True
        self._malloc = Malloc()
        self._malloc.limit_arenas()
        self._malloc.fix_mmap_threshold()
        self.elector: LeaderElector | None = None
        self._leader = Gauge("eventpipe_leader", "1 while this replica watches and sends "
                             "(holds the Lease, or leader election is off).",
                             registry=self.metrics.registry)

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` is set or something fatal happens; returns the exit code (see
        eventpipe.core.tasks.EXIT_*). Whatever was opened is closed again if setup fails half-way
        (a bad kubeconfig, a port in use), which then is one error line, not a traceback."""
        ended: FatalError | None = None
        async with contextlib.AsyncExitStack() as opened:
            try:
                writer, spool = await self._start(opened)
            except FatalError as exc:
                log.error(str(exc), extra={"exit_code": exc.exit_code})
                return exc.exit_code
            if self.elector is not None and not await first_of(self.elector.acquire(), stop):
                log.info("shutting down (standby)")
                return EXIT_STOPPED
            tasks = self._launch(writer, spool)
            ending = asyncio.create_task(fatal.until_fatal(tasks, self.elector))
            try:
                await first_of(asyncio.shield(ending), stop)
                if ending.done():
                    ended = ending.result()
                    log.error(str(ended), extra={"exit_code": ended.exit_code})
                else:
                    log.info("shutting down")
            finally:
                await self._shutdown(writer, tasks)
                await cancel_all([ending])
                lost = ended is not None and ended.exit_code == EXIT_LEADERSHIP_LOST
                if self.elector is not None and not lost:
                    await self.elector.release()
        code = EXIT_STOPPED if ended is None else ended.exit_code
        log.info("eventpipe stopped", extra={"committed": writer.committed, "exit_code": code})
        return code

    async def _start(self, opened: contextlib.AsyncExitStack) -> tuple[SpoolWriter, Spool]:
        cfg = self.config
        warn_unimplemented(cfg)
        router = compile_route(cfg.route)
        sinks = [(build_sink(r, cluster_name=cfg.cluster_name),
                  delivery_settings(r, max_event_age=cfg.max_event_age_seconds))
                 for r in cfg.receivers]
        counted_by_receiver = self._bind_metrics_receivers(
            [(r.sink_type, sink) for r, (sink, _) in zip(cfg.receivers, sinks, strict=True)])
        api_client = await fatal.connect_api(self._kubeconfig,
                                              read_bufsize=cfg.watch.read_buffer_size)
        opened.push_async_callback(api_client.close)
        if cfg.leader_election.enabled:
            # Imported only here: most deployments run one replica without a Lease.
            from eventpipe.leader.elector import LeaderElector
            from eventpipe.leader.lease import KubeLeaseApi, LeaseSettings

            lease = LeaseSettings.from_config(cfg.leader_election)
            self.elector = LeaderElector(
                KubeLeaseApi(api_client, name=lease.name, namespace=lease.namespace,
                             request_timeout=lease.renew_deadline),
                lease, on_change=lambda leader: self._leader.set(int(leader)))
        else:
            self._leader.set(1)
        if problem := disk.start_problem(Path(cfg.spool.path)):
            raise FatalError(f"cannot open the spool {cfg.spool.path}: {problem}",
                             exit_code=EXIT_CONFIG)
        spool = await fatal.open_spool_checked(cfg, self.metrics)
        opened.push_async_callback(spool.close)
        self._spool_file = fatal.file_identity(cfg.spool.path)
        self.metrics.spool_budget.set(cfg.spool.max_bytes or 0)
        self.metrics.spool_rows.set_function(lambda: float(spool.rows))
        new_data = NewData()
        writer = SpoolWriter(spool, metrics=self.metrics,
                             batch_max_events=cfg.spool.batch_max_events,
                             batch_max_wait=cfg.spool.batch_max_wait,
                             max_buffered=cfg.spool.buffer_max_events,
                             max_buffered_bytes=cfg.spool.buffer_max_bytes,
                             full_errors=(SpoolFullError,), on_commit=new_data.notify,
                             max_group_bytes=spool.largest_append,
                             count_events=not counted_by_receiver)
        self._writer = writer
        self._stopping = asyncio.Event()
        enricher = build_enricher(
            omit_lookup=cfg.omit_lookup, cache_size=cfg.cache_size, kube_qps=cfg.kube_qps,
            kube_burst=cfg.kube_burst, api_client=api_client, registry=self.metrics.registry,
            enrich=cfg.enrich, namespaces=cfg.watch_namespaces,
            informer_settings=InformerSettings(
                page_size=cfg.enrich.page_size, timeout_min=cfg.watch.timeout_min,
                timeout_max=cfg.watch.timeout_max, backoff_initial=cfg.watch.backoff_initial,
                backoff_max=cfg.watch.backoff_max))
        self.enricher = enricher
        if enricher is not None:
            opened.push_async_callback(enricher.close)  # before the API client closes
            if enricher.caches is not None:
                opened.push_async_callback(enricher.caches.close)
        for sink, settings in sinks:
            delivery = Delivery(sink, router=router, settings=settings, metrics=self.metrics,
                                stopping=self._stopping, enricher=enricher)
            self.workers.append(SinkWorker(delivery, spool=spool, new_data=new_data,
                                           settings=settings, metrics=self.metrics,
                                           stopping=self._stopping, ingest=writer))
        watch_settings = WatchSettings(
            page_size=cfg.watch.page_size, timeout_min=cfg.watch.timeout_min,
            timeout_max=cfg.watch.timeout_max, backoff_initial=cfg.watch.backoff_initial,
            backoff_max=cfg.watch.backoff_max, read_bytes=cfg.watch.read_buffer_size)
        for namespace in cfg.watch_namespaces or ("",):  # "": all namespaces
            api = KubeEventsApi(api_client, api_group=cfg.watch.api_group, namespace=namespace)
            self.watchers.append(Watcher(api=api, stream=stream_name(cfg.watch.api_group,
                                                                     namespace),
                                         writer=writer, settings=watch_settings,
                                         metrics=self.metrics))
        http = HttpServer(metrics=self.metrics, ready=self._readiness, address=cfg.http.address,
                          port=self._http_port)
        opened.push_async_callback(http.stop)
        await fatal.start_http(http, cfg.http.address, self._http_port)
        self.http = http
        log.info("eventpipe started", extra={
            "streams": [w.stream for w in self.watchers],
            "receivers": [w.name for w in self.workers], "spool": str(cfg.spool.path),
            "http_port": http.port})
        return writer, spool

    def _bind_metrics_receivers(self, sinks: list[tuple[str, Any]]) -> bool:
        """Hand the process's metrics to the sinks that report into them (`bind_metrics`);
        True when a `metrics` receiver counts events (then the spool writer does not)."""
        for _, sink in sinks:
            bind = getattr(sink, "bind_metrics", None)
            if bind is not None:
                bind(self.metrics)
        return any(sink_type == "metrics" for sink_type, _ in sinks)

    def _launch(self, writer: SpoolWriter, spool: Spool) -> PipelineTasks:
        """Start watching and sending (at once, or once this replica leads)."""
        if self.enricher is not None and self.enricher.caches is not None:
            # The caches' first lists live as long as the process and hold no cycles: once
            # listed, the cyclic collector's full passes need not traverse them again.
            self.enricher.caches.start(on_settled=freeze_long_lived)
        return PipelineTasks(
            writer=asyncio.create_task(writer.run(), name="spool-writer"),
            watchers=[asyncio.create_task(supervise(f"watch {w.stream}", _bind_watch(w, spool)))
                      for w in self.watchers],
            workers=[asyncio.create_task(supervise(f"sink {w.name}", w.run))
                     for w in self.workers],
            upkeep=asyncio.create_task(self._upkeep(spool), name="spool-upkeep"),
            lag=asyncio.create_task(self._lag_gauges(), name="lag-gauges"),
            trim=asyncio.create_task(self._trim_memory(), name="malloc-trim"),
            spool_check=asyncio.create_task(fatal.watch_spool_file(self.config.spool.path,
                                                             self._spool_file),
                                            name="spool-file-check"))

    async def _shutdown(self, writer: SpoolWriter, tasks: PipelineTasks) -> None:
        """Stop watching, commit what was read, let workers finish their batch in time."""
        deadline = time.monotonic() + self.config.shutdown_timeout
        await cancel_all(tasks.watchers)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writer.wait_idle(), time_left(deadline))
        await cancel_all([tasks.writer, tasks.upkeep, tasks.lag, tasks.trim, tasks.spool_check])
        self._stopping.set()
        if tasks.workers:
            _, late = await asyncio.wait(tasks.workers, timeout=time_left(deadline))
            if late:
                log.warning("shutdown deadline hit; unfinished batches repeat on restart",
                            extra={"workers": len(late)})
            await cancel_all(list(late))

    async def _readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready when every stream watches and the spool can store. `namespaces` says, per
        namespace ("*" = all), "watching" or why not (`forbidden: cannot list/watch ...`):
        a namespace RBAC refuses is a visible not-ready, never a silent gap. A standby
        replica (leader election) watches nothing and is ready while its spool is usable.
        `spool_writable` is false from a failed commit (the disk or the budget full, the file
        failing) until one succeeds again, with `spool_problem` saying why."""
        writable = self._spool_ok and self._writer.writable
        spool: dict[str, object] = {"spool_writable": writable}
        if not writable:
            spool["spool_problem"] = self._writer.problem or "spool upkeep failed (see the log)"
        if self.elector is not None and not self.elector.is_leader:
            # A standby is ready: it is doing its job (waiting), and an unready standby would
            # stall every rolling update of a StatefulSet behind it.
            return writable, {"leader": "standby", "holder": self.elector.holder, **spool}
        namespaces = {(w.namespace or "*"): w.status for w in self.watchers}
        streams = {w.stream: w.status for w in self.watchers}
        ready = writable and all(w.established.is_set() for w in self.watchers)
        details: dict[str, object] = {"namespaces": namespaces, "streams": streams, **spool}
        caches = self.enricher.caches if self.enricher is not None else None
        if caches is not None:
            # Not ready while the metadata caches sync (within enrich.syncTimeout): a rollout
            # waits for a replica that would enrich. A degraded kind counts as settled.
            details["enrichment"] = caches.status()
            ready = ready and (caches.settled or not caches.waiting_allowed)
        return ready, details

    async def _lag_gauges(self) -> None:
        """Lag per receiver every 2 s, so an outage shows while it lasts."""
        while True:
            await asyncio.sleep(2.0)
            for worker in self.workers:
                try:
                    await worker.refresh_lag()
                except Exception:
                    log.exception("lag refresh failed", extra={"receiver": worker.name})

    async def _trim_memory(self) -> None:
        """Return freed heap to the OS every second (see eventpipe.memory)."""
        while True:
            await asyncio.sleep(1.0)
            self._malloc.trim()

    async def _upkeep(self, spool: Spool) -> None:
        """Retention and spool gauges on a timer."""
        receivers = [w.name for w in self.workers]
        while True:
            try:
                deleted = await spool.retention(receivers)
                if deleted:
                    log.info("retention removed old events", extra={"deleted": deleted})
                stats: dict[str, Any] = await spool.stats()
                self.metrics.spool_bytes.set(float(stats.get("bytes", 0)))
                if not self._spool_ok:
                    log.info("spool upkeep works again")
                self._spool_ok = True
            except sqlite3.Error as exc:  # a full disk, a locked file: say it once, no trace
                if self._spool_ok:
                    log.warning("spool upkeep failed; retrying", extra={
                        "error": str(exc), "code": getattr(exc, "sqlite_errorname", "")})
                self._spool_ok = False
            except Exception:
                self._spool_ok = False
                log.exception("spool upkeep failed")
            await asyncio.sleep(self.config.spool.retention_interval)


def _bind_watch(watcher: Watcher, spool: Spool) -> Callable[[], Awaitable[None]]:
    async def start() -> None:
        await watcher.run(await spool.resume_point(watcher.stream))
    return start
