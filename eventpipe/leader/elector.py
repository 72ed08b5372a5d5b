"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.

Only the Lease holder watches and sends. The record is the Lease's spec: `holderIdentity`,
`leaseDurationSeconds`, `acquireTime`, `renewTime`, `leaseTransitions`. Writes are optimistic:
a PUT carries the `metadata.resourceVersion` it read, and 409 Conflict means another replica
wrote first and won.

The subtle part is time. Like client-go, a standby never compares `renewTime` with its own
clock (nodes' clocks differ): it notes, on its own monotonic clock, when it last saw the record
change, and takes over once it has seen no change for `leaseDurationSeconds`. The leader counts
from the moment it *sent* its last successful renewal (the write happened after that, so every
standby saw it after that too) and gives up at `renewDeadline`; since renewDeadline <
leaseDuration, it has stopped before any standby may take over.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp

from eventpipe.leader.lease import KubeLeaseApi, LeaseError, LeaseSettings, Obj

log = logging.getLogger("eventpipe.leader")


def _micro_time(moment: datetime | None = None) -> str:
    """A metav1.MicroTime, as the Lease's acquireTime/renewTime are written."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire, renew and release one Lease. `on_change(True/False)` hears every change."""

    def __init__(self, api: KubeLeaseApi, settings: LeaseSettings, *,
                 on_change: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self.settings = settings
        self._on_change = on_change
        self._clock = clock
        self.is_leader = False
        self.holder = ""
        """The holder seen in the Lease last read ("" = none or released)."""
        self._observed: Obj | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0  # when the last successful write was sent (leader only)

    async def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease and take or renew it if we may. True = we hold it now."""
        s = self.settings
        sent = self._clock()
        lease = await self._api.get()
        now = _micro_time()
        spec: Obj = {"holderIdentity": s.identity,
                     "leaseDurationSeconds": max(1, math.ceil(s.lease_duration)),
                     "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": s.name, "namespace": s.namespace}, "spec": spec}
            written = await self._api.create(body)
        else:
            old: Obj = lease.get("spec") or {}
            if old != self._observed:
                self._observed, self._observed_at = old, self._clock()
            self.holder = str(old.get("holderIdentity") or "")
            ours = self.holder == s.identity
            duration = float(old.get("leaseDurationSeconds") or s.lease_duration)
            if self.holder and not ours and self._clock() < self._observed_at + duration:
                self._set_leader(False)
                return False
            transitions = int(old.get("leaseTransitions") or 0)
            if ours:
                spec["acquireTime"] = old.get("acquireTime") or now
            spec["leaseTransitions"] = transitions if ours else transitions + 1
            written = await self._api.replace({**lease, "spec": spec})
        if written is None:
            log.debug("lost the race for the Lease (409 Conflict)", extra={"lease": s.name})
            self._set_leader(False)
            return False
        self._observed, self._observed_at = written.get("spec") or {}, self._clock()
        self.holder, self._renewed_at = s.identity, sent
        self._set_leader(True)
        return True

    async def acquire(self) -> None:
        """Return once this replica holds the Lease, trying every retryPeriod."""
        s = self.settings
        log.info("standing by for the Lease", extra={
            "lease": f"{s.namespace}/{s.name}", "identity": s.identity})
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(s.retry_period)

    async def hold(self) -> str:
        """Renew every retryPeriod; return, saying why, when leadership is lost: no renewal
        got through within renewDeadline, or another replica holds the Lease."""
        s = self.settings
        lease = f"{s.namespace}/{s.name}"
        while True:
            await asyncio.sleep(s.retry_period)
            renewed = False
            reason = ""
            while True:
                left = self._renewed_at + s.renew_deadline - self._clock()
                if left <= 0:
                    reason = (f"could not renew the Lease {lease} within renewDeadline "
                              f"({s.renew_deadline:g}s)")
                    break
                try:
                    renewed = await asyncio.wait_for(self._attempt(), left)
                except TimeoutError:
                    renewed = False
                if renewed:
                    break
                if self.holder and self.holder != s.identity:
                    reason = f"the Lease {lease} is held by {self.holder}"
                    break
                await asyncio.sleep(min(s.retry_period,
                                        max(0.0, self._renewed_at + s.renew_deadline
                                            - self._clock())))
            if not renewed:
                self._set_leader(False)
                return reason

    async def release(self) -> None:
        """Give the Lease up (holder "" and 1 s), so a standby need not wait leaseDuration."""
        if not self.is_leader:
            return
        self._set_leader(False, released=True)
        try:
            lease = await self._api.get()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != \
                    self.settings.identity:
                return
            now = _micro_time()
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                    "acquireTime": now, "renewTime": now}
            await self._api.replace({**lease, "spec": spec})
            log.info("released the Lease", extra={"lease": self.settings.name})
        except (LeaseError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not release the Lease; a standby takes over after "
                        "leaseDuration", extra={"error": str(exc)})

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (LeaseError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("Lease request failed", extra={"lease": self.settings.name,
                                                       "error": str(exc) or type(exc).__name__})
            return False

    def _set_leader(self, leader: bool, *, released: bool = False) -> None:
        if leader == self.is_leader:
            return
        self.is_leader = leader
        s = self.settings
        if leader:
            log.info("became leader", extra={"lease": f"{s.namespace}/{s.name}",
                                             "identity": s.identity})
        elif released:
            log.info("stepping down", extra={"lease": f"{s.namespace}/{s.name}",
                                             "identity": s.identity})
        else:
            log.warning("leadership lost", extra={"lease": f"{s.namespace}/{s.name}",
                                                  "identity": s.identity, "holder": self.holder})
        if self._on_change is not None:
            self._on_change(leader)
