"""What the simulated cluster does: replay the bundled real Events as a live, realistic stream.

Each written version is a real Event from the sample with what must change for it to be a new,
current Event: a fresh uid and name (`<object>.<hex nanoseconds>`, as the API server names
them), and timestamps of now (null timestamps stay null, as captured). On top of the plain
replay run the patterns that make Events hard to export:

- storms: a BackOff or FailedScheduling Event is merged by the API server, so it is written once
  and then MODIFIED again and again with `count` (or `series.count`) + 1 — the updates resmo's
  exporter drops;
- node flaps: a node goes NotReady and comes back a few seconds later. No Apache/MIT source in
  the corpus holds a NodeNotReady Event, so it is made from a captured node Event with the
  reason and message the kubelet writes ("Node X status is now: NodeNotReady") and the rest kept;
- the long tail: Pod lifecycle, operators, custom resources, warnings of every kind.

The rate is kept with a token bucket on the loop clock, so `--rate 20` means 20 versions/s on
average whatever the tick length.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventpipe.demo.cluster import SimulatedCluster
from eventpipe.demo.sample import Event, category

_FRESH_WEIGHTS = {"normal": 50, "warning": 15, "backoff": 12, "scheduling": 10, "node": 13}
_BUMP_SHARE = 0.35  # of writes that bump a running storm, while one runs
_MAX_STORMS = 8
_TICK = 0.05


@dataclass
class _Storm:
    event: Event
    left: int


class Scenario:
    """Writes a realistic mix of Event versions into a `SimulatedCluster` at `rate` per second."""

    def __init__(self, cluster: SimulatedCluster, sample: list[Event], *, rate: float,
                 seed: int | None = None) -> None:
        self._cluster = cluster
        self._rate = rate
        self._rng = random.Random(seed)
        self._pools: dict[str, list[Event]] = collections.defaultdict(list)
        for event in sample:
            self._pools[category(event)].append(event)
        self._weights = {k: w for k, w in _FRESH_WEIGHTS.items() if self._pools.get(k)}
        self._storms: list[_Storm] = []
        self._recoveries: list[tuple[float, Event]] = []  # (due on the loop clock, event)
        self.stats: collections.Counter[str] = collections.Counter()
        """Versions written by kind of write: new, bump, node_not_ready, node_ready."""

    def preload(self, n: int) -> None:
        """Write `n` Events at once: what the cluster already holds when eventpipe starts."""
        now = asyncio.get_running_loop().time()
        for _ in range(n):  # new Events only: the LIST shows one version per Event anyway
            self._fresh(self._pick_kind(), now)

    async def run(self) -> None:
        """Write until cancelled."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        written = 0
        while True:
            now = loop.time()
            due = int((now - start) * self._rate) - written
            if due > self._rate:  # the loop stalled: skip ahead instead of bursting
                written += due - int(self._rate)
                due = int(self._rate)
            for _ in range(due):
                self.step(now)
            written += due
            await asyncio.sleep(max(_TICK, 1.0 / self._rate) if due == 0 else _TICK)

    def step(self, now: float) -> None:
        """Write one version: a node recovering, a storm's next occurrence, or a new Event."""
        if self._recoveries and self._recoveries[0][0] <= now:
            _, event = self._recoveries.pop(0)
            self._write(event, "node_ready")
        elif self._storms and self._rng.random() < _BUMP_SHARE:
            self._bump(self._rng.choice(self._storms))
        else:
            self._fresh(self._pick_kind(), now)

    def _pick_kind(self) -> str:
        kinds = list(self._weights)
        return self._rng.choices(kinds, [self._weights[k] for k in kinds])[0]

    def _fresh(self, kind: str, now: float) -> None:
        event = fresh(self._rng.choice(self._pools[kind]))
        if kind in ("backoff", "scheduling") and len(self._storms) < _MAX_STORMS:
            _set_occurrences(event, 1)
            self._storms.append(_Storm(event, self._rng.randint(5, 40)))
        elif kind == "node" and not self._recoveries and self._rng.random() < 0.3:
            node = (event.get("involvedObject") or {}).get("name", "")
            ready = copy.deepcopy(event)
            ready.update(reason="NodeReady", type="Normal",
                         message=f"Node {node} status is now: NodeReady")
            event.update(reason="NodeNotReady", type="Normal",
                         message=f"Node {node} status is now: NodeNotReady")
            self._recoveries.append((now + self._rng.uniform(3.0, 8.0), fresh(ready)))
            self._write(event, "node_not_ready")
            return
        self._write(event, "new")

    def _bump(self, storm: _Storm) -> None:
        event = storm.event
        _set_occurrences(event, _occurrences(event) + 1)
        if event.get("lastTimestamp"):
            event["lastTimestamp"] = _now()
        self._write(event, "bump")
        storm.left -= 1
        if storm.left <= 0:
            self._storms.remove(storm)

    def _write(self, event: Event, what: str) -> None:
        self._cluster.put(event)
        self.stats[what] += 1


def fresh(template: Event) -> Event:
    """A new Event made from a captured one: new uid, name and timestamps, all else kept."""
    event = copy.deepcopy(template)
    meta = event.setdefault("metadata", {})
    involved = event.get("involvedObject") or {}
    meta.pop("resourceVersion", None)
    meta["uid"] = str(uuid.uuid4())
    meta["name"] = f"{involved.get('name', '')}.{time.time_ns():x}"
    meta["creationTimestamp"] = _now()
    for key in ("firstTimestamp", "lastTimestamp"):
        if event.get(key):
            event[key] = _now()
    if event.get("eventTime"):
        event["eventTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    series = event.get("series")
    if isinstance(series, dict) and series.get("lastObservedTime"):
        event["series"] = {**series,
                           "lastObservedTime": datetime.now(UTC).strftime(
                               "%Y-%m-%dT%H:%M:%S.%fZ")}
    return event


def _occurrences(event: Event) -> int:
    series: Any = event.get("series")
    if isinstance(series, dict) and series.get("count"):
        return int(series["count"])
    return int(event.get("count") or 1)


def _set_occurrences(event: Event, n: int) -> None:
    """Set the occurrence count where this Event keeps it (`series.count` or `count`)."""
    series: Any = event.get("series")
    if isinstance(series, dict):
        event["series"] = {**series, "count": n,
                           "lastObservedTime": datetime.now(UTC).strftime(
                               "%Y-%m-%dT%H:%M:%S.%fZ")}
    else:
        event["count"] = n


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
