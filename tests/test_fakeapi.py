"""The fake kube-apiserver, driven by the real kubernetes_asyncio client through a kubeconfig.

Every end-to-end test trusts this server to behave like kube-apiserver, so these tests pin the
protocol: paginated LIST from one snapshot, WATCH resume from a resourceVersion, 410 in both
forms, BOOKMARKs, timeouts, dropped streams, RBAC, scripted errors and the two API views.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client, config

from tests.fakeapi import FakeApiServer
from tests.fakeapi.corpus import corpus_paths

REPO = Path(__file__).resolve().parents[1]
Obj = dict[str, Any]


def pod_event(name: str, namespace: str = "default", reason: str = "BackOff") -> Obj:
    """A core/v1 Event the way the kubelet writes one."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
        "reason": reason,
        "message": f"Back-off restarting failed container in pod {name}",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "count": 1,
        "firstTimestamp": "2024-05-01T10:00:00Z",
        "lastTimestamp": "2024-05-01T10:00:00Z",
    }


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    async with FakeApiServer() as server:
        yield server


@pytest.fixture
async def api_client(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[client.ApiClient]:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    async with client.ApiClient(cfg) as api_client:
        yield api_client


@pytest.fixture
def v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


async def raw(call: Awaitable[Any]) -> aiohttp.ClientResponse:
    """The client's typed return, as what `_preload_content=False` really gives."""
    return cast(aiohttp.ClientResponse, await call)


async def body(resp: aiohttp.ClientResponse) -> Obj:
    data: Obj = orjson.loads(await resp.read())
    return data


async def next_line(resp: aiohttp.ClientResponse) -> Obj:
    async with asyncio.timeout(5):
        line = await resp.content.readline()
    assert line, "watch stream ended early"
    data: Obj = orjson.loads(line)
    return data


async def watch(v1: client.CoreV1Api, rv: str | int, **kw: Any) -> aiohttp.ClientResponse:
    kw.setdefault("timeout_seconds", 30)
    return await raw(
        v1.list_event_for_all_namespaces(
            watch=True, resource_version=str(rv), _preload_content=False, _request_timeout=30, **kw
        )
    )


# ---- LIST ------------------------------------------------------------------------------
async def test_pagination_serves_one_snapshot(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    uids = [api.add(pod_event(f"p{i}"))["metadata"]["uid"] for i in range(5)]
    first = await body(await raw(v1.list_event_for_all_namespaces(limit=2, _preload_content=False)))
    assert first["kind"] == "EventList" and first["apiVersion"] == "v1"
    assert first["metadata"]["resourceVersion"] == "5"
    assert first["metadata"]["remainingItemCount"] == 3
    assert "kind" not in first["items"][0]  # like kube-apiserver: list items carry no kind
    # Writes between pages must not show up in (or shift) the paginated snapshot.
    api.delete(uids[4])
    api.add(pod_event("late"))
    seen = [i["metadata"]["uid"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = await body(
            await raw(
                v1.list_event_for_all_namespaces(limit=2, _continue=token, _preload_content=False)
            )
        )
        assert page["metadata"]["resourceVersion"] == "5"
        seen += [i["metadata"]["uid"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert sorted(seen) == sorted(uids)
    fresh = await body(await raw(v1.list_event_for_all_namespaces(_preload_content=False)))
    assert fresh["metadata"]["resourceVersion"] == "7" and len(fresh["items"]) == 5
    assert "continue" not in fresh["metadata"]


async def test_expired_continue_is_410(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    for i in range(3):
        api.add(pod_event(f"p{i}"))
    first = await body(await raw(v1.list_event_for_all_namespaces(limit=1, _preload_content=False)))
    api.add(pod_event("newer"))
    api.compact()
    resp = await raw(
        v1.list_event_for_all_namespaces(
            limit=1, _continue=first["metadata"]["continue"], _preload_content=False
        )
    )
    assert resp.status == 410
    status = await body(resp)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Expired", 410)


def test_snapshot_at_every_revision_matches_a_model() -> None:
    # Rebuilt (not cached) snapshots: what a continue token needs once the cache moved on.
    api = FakeApiServer()
    states: list[dict[str, str]] = [{}]
    a = api.add(pod_event("a"))["metadata"]["uid"]
    states.append({a: "1"})
    b = api.add(pod_event("b"))["metadata"]["uid"]
    states.append({a: "1", b: "2"})
    api.bump_count(b)
    states.append({a: "1", b: "3"})
    api.delete(a)
    states.append({b: "3"})
    api.add({**pod_event("a"), "metadata": {"uid": a}})  # same uid comes back
    states.append({b: "3", a: "5"})
    api.compact(1)
    for rv in range(1, len(states)):
        api.store._snapshots.clear()
        got = {c.uid: c.obj["metadata"]["resourceVersion"] for c in api.store.snapshot(rv, None)}
        assert got == states[rv], rv
    with pytest.raises(Exception, match="compacted"):
        api.store.snapshot(0, None)


def test_forget_drops_old_history_and_live_events() -> None:
    api = FakeApiServer()
    old = api.add(pod_event("old"))["metadata"]["uid"]
    kept = api.add(pod_event("kept"))["metadata"]["uid"]
    api.bump_count(kept)  # rv 3: its newest version is past the point forgotten
    api.add(pod_event("new"))
    api.store.forget(2)
    assert api.store.base == 2
    assert api.store.get(old) is None
    assert api.store.get(kept) is not None
    assert [c.rv for c in api.store.changes_after(2, 10)] == [3, 4]
    with pytest.raises(Exception, match="compacted"):
        api.store.changes_after(1, 10)


async def test_namespaced_list(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.add(pod_event("a", "team-a"))
    api.add(pod_event("b", "team-b"))
    resp = await raw(v1.list_namespaced_event("team-a", _preload_content=False))
    assert [i["metadata"]["namespace"] for i in (await body(resp))["items"]] == ["team-a"]


# ---- WATCH -----------------------------------------------------------------------------
async def test_watch_replays_history_then_live(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    first = api.add(pod_event("a"))
    api.add(pod_event("b"))
    resp = await watch(v1, first["metadata"]["resourceVersion"])
    line = await next_line(resp)
    assert line["type"] == "ADDED" and line["object"]["involvedObject"]["name"] == "b"
    assert (
        line["object"]["kind"] == "Event" and line["object"]["metadata"]["resourceVersion"] == "2"
    )
    uid = first["metadata"]["uid"]
    api.bump_count(uid)
    api.modify(uid, {"message": "changed"})
    api.delete(uid)
    got = [await next_line(resp) for _ in range(3)]
    assert [g["type"] for g in got] == ["MODIFIED", "MODIFIED", "DELETED"]
    assert [g["object"]["metadata"]["resourceVersion"] for g in got] == ["3", "4", "5"]
    assert got[0]["object"]["count"] == 2 and got[1]["object"]["message"] == "changed"
    resp.close()


async def test_watch_rv0_starts_with_current_state(
    api: FakeApiServer, v1: client.CoreV1Api
) -> None:
    uid = api.add(pod_event("a"))["metadata"]["uid"]
    api.bump_count(uid)
    resp = await watch(v1, "0")
    line = await next_line(resp)
    assert (line["type"], line["object"]["count"]) == ("ADDED", 2)
    resp.close()


async def test_too_old_watch_in_stream(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.add(pod_event("a"))
    api.add(pod_event("b"))
    api.compact()
    resp = await watch(v1, 1)
    assert resp.status == 200
    line = await next_line(resp)
    assert line["type"] == "ERROR"
    assert line["object"]["reason"] == "Expired" and line["object"]["code"] == 410
    assert line["object"]["message"] == "too old resource version: 1 (2)"
    assert await resp.content.readline() == b""  # then the stream ends


async def test_too_old_watch_as_http_410(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.set_gone_mode("http")
    api.add(pod_event("a"))
    api.add(pod_event("b"))
    api.compact()
    resp = await watch(v1, 1)
    assert resp.status == 410
    assert (await body(resp))["reason"] == "Expired"
    ok = await watch(v1, 2, timeout_seconds=1)  # the compaction point itself is still fine
    assert ok.status == 200
    ok.close()


async def test_bookmark_on_demand(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.add(pod_event("a", "other"))
    plain = await watch(v1, api.resource_version)
    marked = await watch(v1, api.resource_version, allow_watch_bookmarks=True)
    await api.wait_for_watchers(2)
    api.add(pod_event("b", "other"))
    assert (await next_line(marked))["type"] == "ADDED"
    assert api.send_bookmark() == 1
    line = await next_line(marked)
    assert line["type"] == "BOOKMARK"
    assert line["object"] == {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "2"},
    }
    assert (await next_line(plain))["type"] == "ADDED"  # and no BOOKMARK follows on `plain`
    api.disconnect_all(clean=True)
    assert await plain.content.readline() == b""
    marked.close()


async def test_periodic_bookmarks(tmp_path: Path) -> None:
    async with FakeApiServer(bookmark_interval=0.1) as api:
        cfg = client.Configuration()
        kubeconfig = api.write_kubeconfig(tmp_path / "kc")
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        async with client.ApiClient(cfg) as api_client:
            resp = await watch(client.CoreV1Api(api_client), 0, allow_watch_bookmarks=True)
            assert (await next_line(resp))["type"] == "BOOKMARK"
            assert (await next_line(resp))["type"] == "BOOKMARK"
            resp.close()


async def test_timeout_seconds_ends_stream_cleanly(
    api: FakeApiServer, v1: client.CoreV1Api
) -> None:
    started = time.monotonic()
    resp = await watch(v1, 0, timeout_seconds=1)
    async with asyncio.timeout(5):
        assert await resp.content.read() == b""  # clean end: no payload error
    assert 0.9 <= time.monotonic() - started < 3
    (record,) = api.watch_requests()
    assert record.timeout_seconds == 1 and record.resource_version == "0"
    assert record.status == 200


async def test_timeout_ends_a_busy_stream_too(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    n = 40_000  # ~24 MB: more than socket and client buffers hold while we do not read
    api.add_many(pod_event(f"p{i}") for i in range(n))
    resp = await watch(v1, 1, timeout_seconds=1)
    await asyncio.sleep(1.2)  # the stream's deadline passes while the server is mid-backlog
    count = 0
    async with asyncio.timeout(10):
        while await resp.content.readline():
            count += 1
    assert 0 < count < n - 1  # ended on time (cleanly: no payload error), not after the backlog


async def test_disconnect_all_breaks_the_stream(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    resp = await watch(v1, 0)
    await api.wait_for_watchers(1)
    api.add(pod_event("a"))
    assert (await next_line(resp))["type"] == "ADDED"
    assert api.disconnect_all() == 1
    with pytest.raises(aiohttp.ClientPayloadError):
        async with asyncio.timeout(5):
            await resp.content.read()
    await api.wait_for(lambda: not api.streams)


async def test_disconnect_every_n_events(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.disconnect_every(3)
    for i in range(5):
        api.add(pod_event(f"p{i}"))
    resp = await watch(v1, 1)
    got = [await next_line(resp) for _ in range(3)]
    assert [g["object"]["metadata"]["resourceVersion"] for g in got] == ["2", "3", "4"]
    with pytest.raises(aiohttp.ClientPayloadError):
        async with asyncio.timeout(5):
            await resp.content.read()


async def test_namespaced_watch_sees_only_its_namespace(
    api: FakeApiServer, v1: client.CoreV1Api
) -> None:
    api.add(pod_event("a", "team-b"))
    api.add(pod_event("b", "team-a"))
    resp = await raw(
        v1.list_namespaced_event(
            "team-a", watch=True, resource_version="0", _preload_content=False, timeout_seconds=30
        )
    )
    await api.wait_for_watchers(1)
    api.add(pod_event("c", "team-b"))
    api.add(pod_event("d", "team-a"))
    names = [(await next_line(resp))["object"]["involvedObject"]["name"] for _ in range(2)]
    assert names == ["b", "d"]
    resp.close()


async def test_inject_raw_line(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    resp = await watch(v1, 0)
    await api.wait_for_watchers(1)
    api.inject_raw_line(b"{not json")
    async with asyncio.timeout(5):
        assert await resp.content.readline() == b"{not json\n"
    api.add(pod_event("a"))
    assert (await next_line(resp))["type"] == "ADDED"
    resp.close()


# ---- events.k8s.io ---------------------------------------------------------------------
async def test_events_k8s_io_view(api: FakeApiServer, api_client: client.ApiClient) -> None:
    ev1 = client.EventsV1Api(api_client)
    uid = api.add(pod_event("a"))["metadata"]["uid"]
    listed = await body(await raw(ev1.list_event_for_all_namespaces(_preload_content=False)))
    assert listed["apiVersion"] == "events.k8s.io/v1"
    (item,) = listed["items"]
    assert item["regarding"]["name"] == "a" and item["note"].startswith("Back-off")
    assert item["deprecatedCount"] == 1 and item["deprecatedSource"]["component"] == "kubelet"
    assert item["deprecatedLastTimestamp"] == "2024-05-01T10:00:00Z"
    assert "involvedObject" not in item and "message" not in item
    resp = await raw(
        ev1.list_namespaced_event(
            "default", watch=True, resource_version="1", _preload_content=False, timeout_seconds=30
        )
    )
    api.bump_count(uid)
    line = await next_line(resp)
    assert line["object"]["apiVersion"] == "events.k8s.io/v1"
    assert line["object"]["deprecatedCount"] == 2
    resp.close()


async def test_events_k8s_io_objects_are_stored_as_core(api: FakeApiServer) -> None:
    path = next(p for p in corpus_paths() if p.name.startswith("09_"))
    obj = orjson.loads(path.read_bytes().splitlines()[0])
    stored = api.add(obj)
    assert stored["apiVersion"] == "v1"
    assert stored["involvedObject"]["name"] == "some-pod" and stored["count"] == 1
    assert stored["source"] == {"component": "default-scheduler"} and "eventTime" in stored


# ---- auth, errors, RBAC ----------------------------------------------------------------
async def test_requests_need_the_token(api: FakeApiServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api.url}/api/v1/events") as resp:
            assert resp.status == 401
            assert (await resp.json())["reason"] == "Unauthorized"
        bad = {"Authorization": "Bearer wrong"}
        async with session.get(f"{api.url}/api/v1/events", headers=bad) as resp:
            assert resp.status == 401
        async with session.get(f"{api.url}/version") as resp:
            assert resp.status == 200 and (await resp.json())["major"] == "1"
        good = {"Authorization": f"Bearer {api.token}"}
        async with session.get(f"{api.url}/api/v1/nodes", headers=good) as resp:
            assert resp.status == 404 and (await resp.json())["kind"] == "Status"
        async with session.get(f"{api.url}/apis", headers=good) as resp:
            assert (await resp.json())["groups"][0]["name"] == "events.k8s.io"


async def test_fail_next(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.fail_next(2, 429, retry_after=3)
    for _ in range(2):
        resp = await raw(v1.list_event_for_all_namespaces(_preload_content=False))
        assert resp.status == 429 and resp.headers["Retry-After"] == "3"
        status = await body(resp)
        assert status["reason"] == "TooManyRequests"
        assert status["details"]["retryAfterSeconds"] == 3
    assert (await raw(v1.list_event_for_all_namespaces(_preload_content=False))).status == 200
    api.fail_next(1, 500, only="watch")
    assert (await raw(v1.list_event_for_all_namespaces(_preload_content=False))).status == 200
    resp = await watch(v1, 0)
    assert resp.status == 500 and (await body(resp))["reason"] == "InternalError"
    assert [r.status for r in api.event_requests()] == [429, 429, 200, 200, 500]


async def test_forbidden_namespaces(api: FakeApiServer, v1: client.CoreV1Api) -> None:
    api.forbid("kube-system", all_namespaces=True)
    resp = await raw(v1.list_event_for_all_namespaces(_preload_content=False))
    assert resp.status == 403
    assert "at the cluster scope" in (await body(resp))["message"]
    resp = await raw(v1.list_namespaced_event("kube-system", watch=True, _preload_content=False))
    assert resp.status == 403 and (await body(resp))["reason"] == "Forbidden"
    assert (await raw(v1.list_namespaced_event("default", _preload_content=False))).status == 200
    api.allow_all()
    assert (await raw(v1.list_event_for_all_namespaces(_preload_content=False))).status == 200


# ---- corpus, bulk, standalone ----------------------------------------------------------
async def test_load_corpus_keeps_versions_of_one_uid(api: FakeApiServer) -> None:
    added = api.load_corpus()
    assert added == api.resource_version
    uid = "380bec72-7cfd-4a00-85ff-8725c9fc28f9"  # in the corpus twice: count 178 then 490
    versions = [c for c in api.store.history if c.uid == uid]
    assert [(c.type, c.obj["count"]) for c in versions] == [("ADDED", 178), ("MODIFIED", 490)]
    assert len(api.store.live) == added - 2


async def test_one_watcher_streams_50k_events_per_second(
    api: FakeApiServer, v1: client.CoreV1Api
) -> None:
    template = orjson.dumps(pod_event("bulk"))
    n = 60_000
    api.add_many(
        {**orjson.loads(template), "metadata": {"uid": f"u{i}", "name": f"bulk.{i:x}"}}
        for i in range(n)
    )
    resp = await watch(v1, 1)
    started = time.perf_counter()
    count = 0
    async with asyncio.timeout(10):
        while count < n - 1:
            await resp.content.readline()
            count += 1
    rate = count / (time.perf_counter() - started)
    assert rate >= 50_000, f"{rate:.0f} events/s"
    resp.close()


async def test_standalone_mode(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakeapi", "--port", "0", "--kubeconfig", str(kubeconfig),
        "--burst", "120", cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            url = (await proc.stdout.readline()).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        async with client.ApiClient(cfg) as api_client:
            listed = await raw(
                client.CoreV1Api(api_client).list_event_for_all_namespaces(_preload_content=False)
            )
            assert len((await body(listed))["items"]) == 120
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
