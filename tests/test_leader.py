"""Leader election on a coordination.k8s.io/v1 Lease against the fake API server, through the
real kubernetes_asyncio client: acquire, renew, 409 conflicts, takeover after leaseDuration of
silence, a leader that cannot renew stopping before anyone may take over, and the Pipeline
around it (a standby is ready but neither watches nor sends; losing the Lease exits 1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from eventpipe.app import Pipeline
from eventpipe.config import load_config
from eventpipe.kube.client import connect
from eventpipe.leader.elector import LeaderElector
from eventpipe.leader.lease import KubeLeaseApi, LeaseSettings
from tests.fakeapi import FakeApiServer
from tests.fakeapi.leases import BASE
from tests.pipeline_harness import (
    http_get,
    k8s_event,
    read_lines,
    sample_values,
    scrape,
    wait_until,
    write_config,
)

LEASE = "eventpipe"


@pytest.fixture
async def kube(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    api_client = await connect(str(tmp_path / "kubeconfig"))
    yield api_client
    await api_client.close()


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(kube: client.ApiClient, identity: str, *, duration: float = 3.0,
            deadline: float = 2.0, retry: float = 0.05, **kwargs: Any) -> LeaderElector:
    settings = LeaseSettings(name=LEASE, namespace="default", identity=identity,
                             lease_duration=duration, renew_deadline=deadline,
                             retry_period=retry)
    lease_api = KubeLeaseApi(kube, name=LEASE, namespace="default", request_timeout=deadline)
    return LeaderElector(lease_api, settings, **kwargs)


def spec(api: FakeApiServer) -> dict[str, Any]:
    lease = api.leases.get(LEASE)
    assert lease is not None
    return dict(lease["spec"])


def puts(api: FakeApiServer) -> list[float]:
    """Arrival times (monotonic) of Lease updates that succeeded."""
    return [r.monotonic for r in api.requests
            if r.method == "PUT" and "/leases/" in r.path and r.status == 200]


async def test_the_fake_serves_leases_with_auth_and_resource_version_conflicts(
        api: FakeApiServer) -> None:
    url = api.url + BASE.format(ns="default")
    auth = {"Authorization": f"Bearer {api.token}"}
    body = {"metadata": {"name": LEASE}, "spec": {"holderIdentity": "a"}}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/{LEASE}") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/{LEASE}", headers=auth) as resp:
            assert resp.status == 404
        async with http.post(url, json=body, headers=auth) as resp:
            assert resp.status == 201
            created = await resp.json()
        async with http.post(url, json=body, headers=auth) as resp:
            assert resp.status == 409 and (await resp.json())["reason"] == "AlreadyExists"
        update = {**created, "spec": {"holderIdentity": "b"}}
        async with http.put(f"{url}/{LEASE}", json=update, headers=auth) as resp:
            assert resp.status == 200
            updated = await resp.json()
        assert int(updated["metadata"]["resourceVersion"]) > int(
            created["metadata"]["resourceVersion"])
        stale = {**created, "spec": {"holderIdentity": "c"}}  # the old resourceVersion
        async with http.put(f"{url}/{LEASE}", json=stale, headers=auth) as resp:
            assert resp.status == 409 and (await resp.json())["reason"] == "Conflict"
    assert api.leases.holder(LEASE) == "b"


async def test_acquire_creates_the_lease(api: FakeApiServer, kube: client.ApiClient) -> None:
    changes: list[bool] = []
    a = elector(kube, "a", on_change=changes.append)
    await asyncio.wait_for(a.acquire(), 5)
    assert a.is_leader and changes == [True]
    got = spec(api)
    assert got["holderIdentity"] == "a"
    assert got["leaseDurationSeconds"] == 3
    assert got["leaseTransitions"] == 0
    assert got["acquireTime"] == got["renewTime"]


async def test_the_leader_renews_every_retry_period(
        api: FakeApiServer, kube: client.ApiClient) -> None:
    a = elector(kube, "a", retry=0.05)
    await a.acquire()
    first = spec(api)
    holding = asyncio.create_task(a.hold())
    await api.wait_for(lambda: len(api.leases.writes) >= 4, within=5)
    holding.cancel()
    writes = api.leases.writes
    assert [int(w["metadata"]["resourceVersion"]) for w in writes] == list(
        range(1, len(writes) + 1))
    renewals = [w["spec"] for w in writes[1:]]
    assert all(s["acquireTime"] == first["acquireTime"] for s in renewals)
    assert all(s["holderIdentity"] == "a" and s["leaseTransitions"] == 0 for s in renewals)
    times = [first["renewTime"], *(s["renewTime"] for s in renewals)]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert a.is_leader


async def test_a_stale_resource_version_loses_the_race(
        api: FakeApiServer, kube: client.ApiClient) -> None:
    """Another replica writes between our GET and our PUT: the PUT gets 409, we stay standby."""

    class Racing(KubeLeaseApi):
        async def get(self) -> dict[str, Any] | None:
            lease = await super().get()
            if lease is not None:
                api.leases.put({**lease, "spec": {**lease["spec"], "holderIdentity": "c"}})
            return lease

    seed = elector(kube, "seed")
    assert await seed.try_acquire_or_renew()
    api.leases.put({**(api.leases.get(LEASE) or {}), "spec": {"holderIdentity": ""}})
    b = LeaderElector(Racing(kube, name=LEASE, namespace="default"),
                      LeaseSettings(name=LEASE, namespace="default", identity="b"))
    assert not await b.try_acquire_or_renew()
    assert not b.is_leader
    assert api.leases.holder(LEASE) == "c"
    assert [r.status for r in api.requests if r.method == "PUT"][-1] == 409


async def test_a_standby_takes_over_after_lease_duration_without_change(
        api: FakeApiServer, kube: client.ApiClient) -> None:
    a = elector(kube, "a", duration=3.0)
    assert await a.try_acquire_or_renew()
    clock = ManualClock()
    b = elector(kube, "b", duration=3.0, clock=clock)
    assert not await b.try_acquire_or_renew() and b.holder == "a"
    clock.now += 2.9
    assert await a.try_acquire_or_renew()  # a renews: b's 3 s start again from now
    assert not await b.try_acquire_or_renew()
    clock.now += 2.9
    assert not await b.try_acquire_or_renew()  # 2.9 s of silence is not enough
    clock.now += 0.2
    assert await b.try_acquire_or_renew()
    got = spec(api)
    assert got["holderIdentity"] == "b" and got["leaseTransitions"] == 1
    assert got["acquireTime"] == got["renewTime"]
    # The old leader, if it were still alive, sees b and does not fight for the Lease.
    assert not await a.try_acquire_or_renew() and not a.is_leader and a.holder == "b"


async def test_a_leader_that_cannot_renew_stops_before_the_lease_can_expire(
        api: FakeApiServer, kube: client.ApiClient) -> None:
    changes: list[bool] = []
    a = elector(kube, "a", duration=1.5, deadline=1.0, retry=0.1, on_change=changes.append)
    await a.acquire()
    holding = asyncio.create_task(a.hold())
    await api.wait_for(lambda: len(puts(api)) >= 2, within=5)
    api.leases.unavailable = True
    await asyncio.wait_for(holding, 5)
    stopped = time.monotonic()
    last_write = puts(api)[-1]  # a standby cannot have seen the Lease change after this
    assert not a.is_leader and changes == [True, False]
    assert stopped < last_write + 1.5, "still leading when a standby could take over"
    assert stopped >= last_write + 1.0 - 0.15, "gave up before renewDeadline"


async def test_another_holder_ends_leadership_at_once(
        api: FakeApiServer, kube: client.ApiClient) -> None:
    a = elector(kube, "a", duration=30.0, deadline=20.0, retry=0.05)
    await a.acquire()
    holding = asyncio.create_task(a.hold())
    lease = api.leases.get(LEASE) or {}
    api.leases.put({**lease, "spec": {**lease["spec"], "holderIdentity": "intruder"}})
    await asyncio.wait_for(holding, 2)  # far below renewDeadline
    assert not a.is_leader and a.holder == "intruder"


async def test_release_hands_over_without_waiting(
        api: FakeApiServer, kube: client.ApiClient) -> None:
    a = elector(kube, "a", duration=30.0, deadline=20.0)
    await a.acquire()
    await a.release()
    assert not a.is_leader and spec(api)["holderIdentity"] == ""
    b = elector(kube, "b", duration=30.0, deadline=20.0)
    assert await b.try_acquire_or_renew()
    assert spec(api)["leaseTransitions"] == 1


async def test_pipeline_stands_by_then_leads_then_exits_1_when_it_cannot_renew(
        api: FakeApiServer, tmp_path: Path) -> None:
    api.leases.put({"metadata": {"name": LEASE, "namespace": "default"},
                    "spec": {"holderIdentity": "other", "leaseDurationSeconds": 3600}})
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={
        "leaderElection": {"enabled": True, "namespace": "default", "identity": "me",
                           "leaseDuration": "3s", "renewDeadline": "1s",
                           "retryPeriod": "100ms"}})
    pipeline = Pipeline(load_config(config), http_port=0)
    stop = asyncio.Event()
    run = asyncio.create_task(pipeline.run(stop))
    try:
        await wait_until(lambda: hasattr(pipeline, "http") or run.done(), what="HTTP up")
        port = pipeline.http.port
        await api.wait_for(lambda: sum(r.method == "GET" and "/leases/" in r.path
                                       for r in api.requests) >= 3)
        code, body = await http_get(port, "/readyz")
        assert code == 200 and '"standby"' in body and '"other"' in body
        assert sample_values(await scrape(port), "eventpipe_leader") == [0.0]
        assert not api.event_requests(), "a standby must not watch"

        lease = api.leases.get(LEASE) or {}
        api.leases.put({**lease, "spec": {**lease["spec"], "holderIdentity": ""}})
        await api.wait_for_watchers(1, within=10)
        assert api.leases.holder(LEASE) == "me"
        assert sample_values(await scrape(port), "eventpipe_leader") == [1.0]
        api.add(k8s_event("led"))
        await wait_until(lambda: len(read_lines(tmp_path / "events.jsonl")) == 1,
                         what="the leader sends")

        api.leases.unavailable = True
        assert await asyncio.wait_for(run, 10) == 1
        # Watchers and workers are gone (the whole run is over) before a standby, counting
        # from the last renewal it could have seen, may take the Lease (leaseDuration 3 s).
        assert time.monotonic() < puts(api)[-1] + 3.0
    finally:
        stop.set()
        if not run.done():
            await asyncio.wait_for(run, 30)


def test_lease_namespace_comes_from_the_mounted_service_account(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $POD_NAMESPACE the Lease goes in the service account's namespace, read from
    $EVENTPIPE_SERVICE_ACCOUNT_DIR when set (else the kubelet's path)."""
    from eventpipe.leader.lease import default_namespace

    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setenv("EVENTPIPE_SERVICE_ACCOUNT_DIR", str(tmp_path))
    assert default_namespace() == "default"  # no namespace file there
    (tmp_path / "namespace").write_text("observability\n")
    assert default_namespace() == "observability"
    monkeypatch.setenv("POD_NAMESPACE", "team-a")
    assert default_namespace() == "team-a"
