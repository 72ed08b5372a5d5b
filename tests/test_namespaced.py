"""Namespace-scoped mode: `watch.namespaces: [a, b]` watches each namespace on its own, so
namespaced Roles are enough. A namespace RBAC refuses is a named error, not a silent gap: logged
once per state change, counted, /readyz not ready saying why, retried with backoff, and
recovered (with what was missed) once a Role allows it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventpipe.app import Pipeline
from eventpipe.config import load_config
from eventpipe.watch.api import forbidden_reason
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import http_get, k8s_event, read_lines, wait_until, write_config

FAST_RETRY = {"backoffInitial": "50ms", "backoffMax": "200ms"}
NEED_B = ("forbidden: cannot list/watch events in namespace b: RBAC forbids it "
          "(need get/list/watch on events in b)")


@contextlib.asynccontextmanager
async def started(config: Path) -> AsyncIterator[Pipeline]:
    """Run the pipeline without waiting for every watch (one is meant to be refused)."""
    pipeline = Pipeline(load_config(config), http_port=0)
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop))
    try:
        await wait_until(lambda: hasattr(pipeline, "http") or task.done(), what="HTTP up")
        if task.done():
            task.result()
        yield pipeline
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0


async def readyz(pipeline: Pipeline) -> tuple[int, dict[str, Any]]:
    status, body = await http_get(pipeline.http.port, "/readyz")
    details: dict[str, Any] = orjson.loads(body)
    return status, details


def restarts_403(pipeline: Pipeline, stream: str) -> float:
    value: float = pipeline.metrics.watch_restarts.labels(stream, "http_403")._value.get()
    return value


def forbidden_logs(caplog: pytest.LogCaptureFixture, namespace: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "eventpipe.watcher"
            and r.levelno == logging.ERROR and getattr(r, "namespace", None) == namespace]


def files(tmp: Path) -> list[str]:
    return sorted(e["involvedObject"]["name"] for e in read_lines(tmp / "events.jsonl"))


async def test_forbidden_namespace_is_reported_retried_and_recovers(
        api: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="eventpipe.watcher")
    api.forbid("b")
    api.add(k8s_event("pod-a", namespace="a"))
    api.add(k8s_event("pod-b", namespace="b"))
    # The Event watch's RBAC only: the enrichment caches' readiness is tests/test_enrich_watch.py's.
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"watch": {"namespaces": ["a", "b"], **FAST_RETRY},
                                 "omitLookup": True})
    async with started(config) as pipeline:
        assert [w.stream for w in pipeline.watchers] == ["core/a", "core/b"]
        await wait_until(lambda: files(tmp_path) == ["pod-a"], what="namespace a delivered")
        # Still retrying, several times, yet logged as an error only once.
        await wait_until(lambda: restarts_403(pipeline, "core/b") >= 4, what="403 retries")
        status, details = await readyz(pipeline)
        assert status == 503 and details["ready"] is False
        assert details["namespaces"]["a"] == "watching"
        assert details["namespaces"]["b"].startswith(NEED_B)
        assert "HTTP 403" in details["namespaces"]["b"]
        assert details["streams"]["core/b"] == details["namespaces"]["b"]
        assert forbidden_logs(caplog, "b") == [NEED_B.removeprefix("forbidden: ")]
        assert forbidden_logs(caplog, "a") == []
        assert not [r for r in caplog.records if r.levelno == logging.WARNING
                    and getattr(r, "stream", None) == "core/b"], "403 retries are not warnings"
        assert pipeline.metrics.watch_up.labels("core/b")._value.get() == 0
        assert restarts_403(pipeline, "core/a") == 0
        assert files(tmp_path) == ["pod-a"]

        # RBAC fixed: b lists (catching up on what it missed) and watches; ready again.
        api.allow_all()
        await wait_until(lambda: files(tmp_path) == ["pod-a", "pod-b"],
                         what="namespace b caught up")
        await wait_until(lambda: pipeline.watchers[1].established.is_set(), what="b watching")
        assert await readyz(pipeline) == (200, {
            "ready": True, "namespaces": {"a": "watching", "b": "watching"},
            "streams": {"core/a": "watching", "core/b": "watching"}, "spool_writable": True})
        assert any(r.getMessage().startswith("RBAC allows the watch now")
                   and getattr(r, "namespace", None) == "b" for r in caplog.records)
        api.add(k8s_event("pod-b2", namespace="b"))
        await wait_until(lambda: "pod-b2" in files(tmp_path), what="live event in b")

        # Revoked again: a new state change, so a second error (and only one more).
        api.forbid("b")
        api.disconnect_all()
        seen = restarts_403(pipeline, "core/b")
        await wait_until(lambda: restarts_403(pipeline, "core/b") >= seen + 3,
                         what="403 retries after revoking")
        assert len(forbidden_logs(caplog, "b")) == 2
        await wait_until(lambda: pipeline.watchers[0].established.is_set(), what="a rewatched")
        status, details = await readyz(pipeline)
        assert status == 503 and details["namespaces"]["b"].startswith(NEED_B)
        assert details["namespaces"]["a"] == "watching"


async def test_events_k8s_io_forbidden_names_that_resource(api: FakeApiServer,
                                                           tmp_path: Path) -> None:
    api.forbid("team-x")
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig", extra={
        "watch": {"namespaces": ["team-x"], "apiGroup": "events.k8s.io", **FAST_RETRY}})
    async with started(config) as pipeline:
        await wait_until(lambda: restarts_403(pipeline, "events.k8s.io/team-x") >= 1,
                         what="a 403")
        status, details = await readyz(pipeline)
    assert status == 503
    assert details["namespaces"]["team-x"].startswith(
        "forbidden: cannot list/watch events.events.k8s.io in namespace team-x: RBAC forbids "
        "it (need get/list/watch on events.events.k8s.io in team-x)")
    assert 'in API group \\"events.k8s.io\\"' in orjson.dumps(details).decode()


def test_cluster_scope_reason_points_at_both_fixes() -> None:
    reason = forbidden_reason("core", "")
    assert reason.startswith("cannot list/watch events in all namespaces: RBAC forbids it")
    assert "ClusterRole" in reason and "watch.namespaces" in reason
