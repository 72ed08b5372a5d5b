"""Delivery throughput spool → Kafka through the real sink driver and a real broker.

A spool is pre-filled with `events` corpus Events (bench.events, the same bytes a watcher
stores); then one `SinkWorker` with the `kafka` receiver (acks=all, idempotence off because
tansu's in-memory engine refuses it) delivers them to a fresh in-memory tansu broker, and the
clock runs from the worker's start until its cursor reached the spool head, i.e. every record
was acked by the broker. Each run uses its own receiver name (its own cursor) on the same spool
and its own broker. Reported: events/s of each run and their median, with the batch size and
linger used, and eventpipe's CPU per event (steadier than the rate on a shared machine).
Target (issue 16): >= 20,000 events/s.

    python -m bench.delivery_kafka [events]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.events import spool_records
from eventpipe.delivery.driver import Delivery, DeliverySettings, NewData, SinkWorker
from eventpipe.metrics import Metrics
from eventpipe.sinks.kafka.config import KafkaSinkConfig
from eventpipe.sinks.kafka.sink import KafkaSink
from eventpipe.spool import Spool
from tests.kafka_broker import tansu

BATCH_EVENTS = 500
LINGER_MS = 5
RUNS = 3


async def _fill(spool: Spool, events: int) -> None:
    for chunk in spool_records(events):
        await spool.append(chunk, stream="bench", resource_version=None)


async def _deliver(spool: Spool, folder: Path, receiver: str, *, batch: int,
                   linger_ms: int) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) for one worker to deliver the whole spool
    to a fresh broker."""
    async with tansu(folder / f"tansu-{receiver}.log") as broker:
        cfg = KafkaSinkConfig.model_validate({
            "topic": "bench-events", "brokers": [broker.bootstrap], "idempotent": False,
            "lingerMs": linger_ms})
        sink = KafkaSink(name=receiver, cfg=cfg)
        settings = DeliverySettings(batch_max_events=batch, batch_max_wait=0.0)
        metrics = Metrics()
        stopping = asyncio.Event()
        worker = SinkWorker(Delivery(sink, router=None, settings=settings, metrics=metrics,
                                     stopping=stopping),
                            spool=spool, new_data=NewData(), settings=settings,
                            metrics=metrics, stopping=stopping)
        head = await spool.head_seq()
        started, cpu = time.perf_counter(), time.process_time()
        task = asyncio.create_task(worker.run())
        try:
            while worker.acked_seq < head:
                if task.done():
                    task.result()
                    raise RuntimeError("worker stopped before delivering everything")
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
        finally:
            stopping.set()
            await asyncio.wait_for(task, 30)
        if metrics.sink_dead_letters.labels(receiver)._value.get():
            raise RuntimeError("events were dead-lettered")
        return elapsed, cpu


async def _run(events: int, batch: int, linger_ms: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        folder = Path(tmp)
        spool = await Spool.open(folder / "spool.db", synchronous="OFF")
        try:
            await _fill(spool, events)
            stored = await spool.head_seq()
            timings = [await _deliver(spool, folder, f"kafka-{i}", batch=batch,
                                      linger_ms=linger_ms) for i in range(RUNS)]
        finally:
            await spool.close()
    rates = [stored / wall for wall, _ in timings]
    return {
        "events": stored,
        "batch_max_events": batch,
        "linger_ms": linger_ms,
        "runs_events_per_s": [round(r) for r in rates],
        "median_events_per_s": round(statistics.median(rates)),
        # eventpipe's own CPU per event (tansu runs in its own process): load-independent.
        "median_cpu_us_per_event": round(statistics.median(c for _, c in timings) / stored * 1e6,
                                         1),
        "target_events_per_s": 20_000,
    }


def run(events: int = 100_000, *, batch: int = BATCH_EVENTS,
        linger_ms: int = LINGER_MS) -> dict[str, Any]:
    """Deliver `events` pre-spooled Events to tansu RUNS times; events/s per run and median."""
    return asyncio.run(_run(events, batch, linger_ms))


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    for key, value in result.items():
        print(f"{key}: {value}")
