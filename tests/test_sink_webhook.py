"""The generic webhook receiver: config checks, request building, failure semantics (unit, the
sink against tests.fakes.webhook), then eventpipe end to end against the fake API server."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from pydantic import ValidationError

from eventpipe.config import load_config
from eventpipe.config.sink_webhook import WebhookSinkConfig
from eventpipe.core.errors import ConfigError
from eventpipe.replay import replay
from eventpipe.sinks.base import PermanentSinkError, RetriableSinkError
from eventpipe.sinks.webhook import WebhookSink
from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.fakes.webhook import WebhookReceiver
from tests.pipeline_harness import (
    corpus_files,
    k8s_event,
    read_lines,
    running,
    wait_until,
    write_config,
)


@pytest.fixture
async def hook() -> Any:
    async with WebhookReceiver() as server:
        yield server


def body(name: str, **extra: Any) -> bytes:
    """An Event as the spool holds it."""
    return orjson.dumps({**k8s_event(name, uid=f"uid-{name}"), **extra})


def sink_for(hook: WebhookReceiver, **kwargs: Any) -> WebhookSink:
    return WebhookSink(name="hook", endpoint=hook.url(), **kwargs)


async def deliver(sink: WebhookSink, bodies: list[bytes]) -> list[int]:
    """Encode and send like the driver; the indexes that failed."""
    payloads = [sink.encode(orjson.loads(b) if sink.needs_event else None, b) for b in bodies]
    await sink.start()
    try:
        return [f.index for f in await sink.send(payloads)]
    finally:
        await sink.close()


# ---- config ------------------------------------------------------------------------------

def test_config_defaults_and_resmo_keys() -> None:
    cfg = WebhookSinkConfig.model_validate({
        "endpoint": "https://example.com/x?token=s3cret", "layout": None,
        "headers": {"X-API-KEY": 123, "User-Agent": "kube-event-exporter 1.0"},
        "tls": {"insecureSkipVerify": True}})
    assert (cfg.method, cfg.batch, cfg.timeout, cfg.content_type) == (
        "POST", False, 10.0, "application/json")
    assert cfg.headers["X-API-KEY"] == "123"
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(("raw", "message"), [
    ({"endpoint": "ftp://h/?token=s3cret"}, "http:// or https://"),
    ({"endpoint": "http://h", "headers": {"X": "{{ .Reason }}"}, "batch": True},
     "templated headers need one request per event"),
    ({"endpoint": "http://h", "headers": {"X": "{{ .Reason "}}, "headers.X"),
    ({"endpoint": "http://h", "headers": {"X": "a\nb"}}, "CR or LF"),
    ({"endpoint": "http://h", "headers": {"Bad Name": "a"}}, "not a valid header name"),
    ({"endpoint": "http://h", "password": "s3cret"}, "set `username` too"),
    ({"endpoint": "http://h", "username": "u", "bearerToken": "s3cret"}, "given twice"),
    ({"endpoint": "http://h", "bearerToken": "t", "headers": {"authorization": "x"}},
     "given twice"),
    ({"endpoint": "http://h", "layout": "{{ .Message }}"}, "map (or list)"),
    ({"endpoint": "http://h", "method": "GET"}, "POST, PUT or PATCH"),
    ({"endpoint": "http://h", "timeout": 0}, "greater than 0"),
    ({"endpoint": "http://h", "bogus": 1}, "Extra inputs"),
])
def test_config_rejects(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        WebhookSinkConfig.model_validate(raw)
    assert message in str(info.value)
    # eventpipe's config errors print `msg` (not pydantic's input_value): no secret in it.
    assert all("s3cret" not in error["msg"] for error in info.value.errors())


# ---- requests ----------------------------------------------------------------------------

async def test_per_event_requests_carry_the_served_event_and_rendered_headers(
        hook: WebhookReceiver) -> None:
    sink = sink_for(hook, cluster_name="prod", username="u", password="p",
                    headers={"X-API-KEY": "123", "X-Reason": "{{ .Reason }}/{{ .ClusterName }}",
                             "X-Object": "{{ .InvolvedObject.Name }}"})
    assert sink.needs_event
    bodies = [body("a"), body("b", reason="Killing")]
    assert await deliver(sink, bodies) == []
    got = hook.requests
    assert [r.method for r in got] == ["POST", "POST"]
    assert [r.path for r in got] == ["/hook", "/hook"]
    assert [r.headers["X-Reason"] for r in got] == ["BackOff/prod", "Killing/prod"]
    assert [r.headers["X-Object"] for r in got] == ["a", "b"]
    assert all(r.headers["X-API-KEY"] == "123" for r in got)
    assert all(r.headers["Content-Type"] == "application/json" for r in got)
    assert got[0].headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    # The served bytes, key order kept, with clusterName appended (resmo's EnhancedEvent).
    assert got[0].body == bodies[0][:-1] + b',"clusterName":"prod"}'


async def test_method_content_type_and_bearer(hook: WebhookReceiver) -> None:
    hook.require_json = False
    sink = sink_for(hook, method="PUT", content_type="application/x-ndjson",
                    bearer_token="tok")
    assert not sink.needs_event
    assert await deliver(sink, [body("a")]) == []
    record = hook.requests[0]
    assert record.method == "PUT"
    assert record.headers["Content-Type"] == "application/x-ndjson"
    assert record.headers["Authorization"] == "Bearer tok"


def test_rendered_header_with_newline_is_a_dead_letter() -> None:
    sink = WebhookSink(name="hook", endpoint="http://127.0.0.1:1/",
                       headers={"X-Message": "{{ .Message }}"})
    event = k8s_event("a", message="line one\nline two")
    with pytest.raises(PermanentSinkError, match="CR/LF"):
        sink.encode(event, orjson.dumps(event))
    ok = k8s_event("b")
    assert sink.encode(ok, orjson.dumps(ok)).startswith(b"BackOff on b\n{")


async def test_batch_mode_sends_one_json_array_of_layouts(hook: WebhookReceiver) -> None:
    layout = {"name": "{{ .InvolvedObject.Name }}", "reason": "{{ .Reason }}",
              "cluster": "{{ .ClusterName }}", "n": 1}
    sink = sink_for(hook, batch=True, layout=layout, cluster_name="c1")
    assert await deliver(sink, [body(f"p{i}") for i in range(5)]) == []
    assert len(hook.requests) == 1
    assert hook.requests[0].json() == [
        {"name": f"p{i}", "reason": "BackOff", "cluster": "c1", "n": 1} for i in range(5)]


def named(*names: str) -> Any:
    """A predicate matching requests whose body mentions one of these pods."""
    marks = [f'"name":"{n}"'.encode() for n in names]
    return lambda r: any(m in r.body for m in marks)


async def test_per_event_permanent_failure_fails_only_that_event(
        hook: WebhookReceiver) -> None:
    hook.reject_when(named("p2"))
    assert await deliver(sink_for(hook), [body(f"p{i}") for i in range(5)]) == [2]
    assert [r.json()["involvedObject"]["name"] for r in hook.accepted] == [
        "p0", "p1", "p3", "p4"]


async def test_per_event_retriable_failure_stops_to_keep_order(hook: WebhookReceiver) -> None:
    hook.reject_when(named("p2"), status=503, retry_after=7)
    sink = sink_for(hook)
    payloads = [sink.encode(None, body(f"p{i}")) for i in range(5)]
    await sink.start()
    try:
        failures = await sink.send(payloads)
        assert [f.index for f in failures] == [2, 3, 4]
        assert all(f.error.retriable and f.error.retry_after == 7 for f in failures)
        assert len(hook.requests) == 3  # p3, p4 were held back, not sent out of order
        hook.reject_when(named("p0"), status=503)
        with pytest.raises(RetriableSinkError):  # the first one fails: the whole batch did
            await sink.send(payloads)
    finally:
        await sink.close()


async def test_batch_mode_splits_to_isolate_a_rejected_event(hook: WebhookReceiver) -> None:
    hook.reject_when(named("p5"))
    sink = sink_for(hook, batch=True)
    assert await deliver(sink, [body(f"p{i}") for i in range(8)]) == [5]
    names = [item["involvedObject"]["name"] for item in hook.json_items()]
    assert sorted(names) == [f"p{i}" for i in range(8) if i != 5]
    assert names == sorted(names)  # halves go out in spool order
    assert len(hook.requests) <= 1 + 2 * 3  # one split per level of the halving


async def test_batch_mode_retriable_and_refused(hook: WebhookReceiver) -> None:
    sink = sink_for(hook, batch=True)
    payloads = [sink.encode(None, body(f"p{i}")) for i in range(3)]
    await sink.start()
    try:
        hook.fail_next(1, 429, retry_after=3)
        with pytest.raises(RetriableSinkError) as info:
            await sink.send(payloads)
        assert info.value.retry_after == 3
        await hook.stop()
        with pytest.raises(RetriableSinkError) as refused:
            await sink.send(payloads)
        assert hook.url() not in str(refused.value)
        await hook.start()
        assert await sink.send(payloads) == []
    finally:
        await sink.close()


# ---- end to end: eventpipe in-process --------------------------------------------------

def hook_receiver(hook: WebhookReceiver, **webhook: Any) -> dict[str, Any]:
    """A receiver `hook` with fast retries (the tests wait for recovery, not for backoff)."""
    return {"name": "hook", "webhook": {"endpoint": hook.url(), **webhook},
            "retry": {"initialBackoff": "20ms", "maxBackoff": "200ms"},
            "batch": {"maxEvents": 200, "maxWait": 0}}


def hook_config(tmp: Path, hook: WebhookReceiver, *, with_file: bool = False,
                extra: dict[str, Any] | None = None, **webhook: Any) -> Path:
    receivers = [hook_receiver(hook, **webhook)]
    routes = [{"match": [{"receiver": "hook"}]}]
    if with_file:
        receivers.append({"name": "dump", "file": {"path": str(tmp / "events.jsonl")}})
        routes.append({"match": [{"receiver": "dump"}]})
    return write_config(tmp, kubeconfig=tmp / "kubeconfig", receivers=receivers,
                        route={"routes": routes}, extra=extra)


def served(api: FakeApiServer) -> dict[tuple[str, str], bytes]:
    """Every ADDED/MODIFIED version the fake API server emitted, as orjson bytes."""
    return {(c.uid, str(c.rv)): orjson.dumps(c.obj)
            for c in api.store.changes_after(0, 10**9) if c.type in ("ADDED", "MODIFIED")}


def received(hook: WebhookReceiver) -> list[tuple[str, str]]:
    """(uid, resourceVersion) of each accepted event, in arrival order."""
    return [(e["metadata"]["uid"], e["metadata"]["resourceVersion"]) for e in hook.json_items()]


async def test_corpus_every_version_arrives_with_rendered_headers(
        api: FakeApiServer, hook: WebhookReceiver, tmp_path: Path) -> None:
    api.load_corpus(corpus_files())
    config = hook_config(tmp_path, hook, extra={"clusterName": "e2e"},
                         headers={"X-Reason": "{{ .Reason }}", "X-Uid": "{{ .UID }}",
                                  "X-Static": "yes"})
    async with running(config):
        listed = {uid: rv for uid, rv in served(api)}  # LIST shows each uid's latest version
        await hook.wait_for(lambda h: len(h.accepted) >= len(listed), within=50,
                            what=f"{len(listed)} listed events")
        bumped = list(listed)[:20]
        for uid in bumped:
            api.bump_count(uid)
            api.bump_count(uid)
        await hook.wait_for(lambda h: len(h.accepted) >= len(listed) + 40, what="new versions")
    versions = served(api)
    got = received(hook)
    assert len(got) == len(set(got)) == len(listed) + 40
    expected = {(uid, rv) for uid, rv in listed.items()} | {
        key for key in versions if key[0] in bumped}
    assert set(got) == expected
    for record in hook.accepted:
        event = record.json()
        key = (event["metadata"]["uid"], event["metadata"]["resourceVersion"])
        # The served object (LIST items gain kind/apiVersion, so compare values), and
        # clusterName spliced on at the end rather than the event re-serialised.
        assert event == {**orjson.loads(versions[key]), "clusterName": "e2e"}
        assert record.body.endswith(b',"clusterName":"e2e"}')
        assert record.headers["X-Reason"] == event.get("reason", "")
        assert record.headers["X-Uid"] == event["metadata"]["uid"]
        assert record.headers["X-Static"] == "yes"


async def test_429_with_retry_after_is_waited_out_then_delivered(
        api: FakeApiServer, hook: WebhookReceiver, tmp_path: Path) -> None:
    hook.fail_next(1, 429, retry_after=1)
    async with running(hook_config(tmp_path, hook)):
        api.add(k8s_event("slow", uid="uid-slow"))
        await hook.wait_for(lambda h: len(h.accepted) == 1, what="the retried event")
    first, second = hook.requests
    assert (first.status, second.status) == (429, 200)
    assert first.body == second.body
    # initialBackoff is 20 ms: only Retry-After explains a wait of a second.
    assert second.at - first.at >= 0.95


async def test_rejected_event_is_dead_lettered_then_replayed(
        api: FakeApiServer, hook: WebhookReceiver, tmp_path: Path) -> None:
    hook.reject_when(named("bad"))
    config = hook_config(tmp_path, hook)
    async with running(config):
        for name in ("a", "bad", "b", "c"):
            api.add(k8s_event(name, uid=f"uid-{name}"))
        await hook.wait_for(lambda h: len(h.requests) == 4, what="4 requests")
    assert [r.status for r in hook.requests] == [200, 400, 200, 200]
    assert [e["metadata"]["uid"] for e in hook.json_items()] == ["uid-a", "uid-b", "uid-c"]
    spool = await Spool.open(tmp_path / "spool.db")
    try:
        letters = await spool.dead_letters("hook")
        assert len(letters) == 1 and "HTTP 400" in letters[0][2]
    finally:
        await spool.close()

    # Still rejected: the replay leaves it dead; once the endpoint takes it, it goes through.
    assert (await replay(load_config(config), receiver="hook", dead_letters=True)).dead == 1
    hook.reject_when(None)
    result = await replay(load_config(config), receiver="hook", dead_letters=True)
    assert (result.sent, result.dead) == (1, 0)
    assert hook.requests[-1].status == 200
    assert hook.requests[-1].json()["metadata"]["uid"] == "uid-bad"
    spool = await Spool.open(tmp_path / "spool.db")
    try:
        assert await spool.dead_letters("hook") == []
    finally:
        await spool.close()


async def test_outage_loses_nothing_and_never_slows_the_file_receiver(
        api: FakeApiServer, hook: WebhookReceiver, tmp_path: Path) -> None:
    config = hook_config(tmp_path, hook, with_file=True)
    out = tmp_path / "events.jsonl"
    async with running(config) as pipeline:
        lag: list[float] = []
        gauge = pipeline.metrics.sink_lag_events.labels("hook")
        real_set = gauge.set

        def record(value: float) -> None:
            lag.append(value)
            real_set(value)

        gauge.set = record  # type: ignore[method-assign]
        for i in range(20):
            api.add(k8s_event(f"before-{i}", uid=f"uid-before-{i}"))
        await hook.wait_for(lambda h: len(h.accepted) == 20, what="20 events before")
        await hook.stop()
        started = time.monotonic()
        total = 20
        for round_ in range(4):  # events keep coming while the receiver is down
            for i in range(25):
                api.add(k8s_event(f"down-{round_}-{i}", uid=f"uid-down-{round_}-{i}"))
            total += 25
            await wait_until(lambda n=total: len(read_lines(out)) == n,  # type: ignore[misc]
                             within=10, what=f"{total} lines in the file")
        # The file receiver had everything while the webhook was down.
        assert len(read_lines(out)) == total and not hook.running
        assert time.monotonic() - started < 10
        await hook.start()
        await hook.wait_for(lambda h: len(set(received(h))) == total, what="all events")
        await wait_until(lambda: gauge._value.get() == 0, what="hook lag back to 0")
    got = received(hook)
    file_order = [(e["metadata"]["uid"], e["metadata"]["resourceVersion"])
                  for e in read_lines(out)]
    assert set(got) == set(file_order)
    first_seen = list(dict.fromkeys(got))
    assert first_seen == file_order  # per-event mode keeps spool order across the outage
    assert max(lag) > 0 and lag[-1] == 0


async def test_resmo_readme_example_loads_and_runs(
        api: FakeApiServer, hook: WebhookReceiver, tmp_path: Path) -> None:
    example = '''\
route:
  routes:
    - match:
        - receiver: "alerts"
receivers:
  - name: "alerts"
    webhook:
      endpoint: "https://my-super-secret-service.com"
      headers:
        X-API-KEY: "123"
        User-Agent: kube-event-exporter 1.0
      layout: # Optional
'''
    path = tmp_path / "resmo.yaml"
    path.write_text(example)
    config = load_config(path)
    assert config.receivers[0].sink_type == "webhook"
    ours = yaml.safe_load(example.replace("https://my-super-secret-service.com", hook.url()))
    ours.update({"kubeconfig": str(tmp_path / "kubeconfig"),
                 "spool": {"path": str(tmp_path / "spool.db")},
                 "http": {"address": "127.0.0.1", "port": 0}})
    path.write_text(yaml.safe_dump(ours))
    event = api.add(k8s_event("readme", uid="uid-readme"))
    async with running(path):
        await hook.wait_for(lambda h: len(h.accepted) == 1, what="the event")
    record = hook.accepted[0]
    assert record.headers["X-API-KEY"] == "123"
    assert record.headers["User-Agent"] == "kube-event-exporter 1.0"
    assert record.headers["Content-Type"] == "application/json"
    assert record.json()["metadata"]["uid"] == event["metadata"]["uid"]


def test_config_errors_name_the_line_without_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('receivers:\n  - name: h\n    webhook:\n'
                    '      endpoint: "ftp://hooks.example/T0/s3cret"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert ":4:" in str(info.value) and "s3cret" not in str(info.value)

