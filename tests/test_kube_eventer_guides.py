"""The kube-eventer guides run unchanged against the fake API server: `/kube-eventer` with the
guide's `--source` and WeCom `--sink` flags, the body template read from the
`custom-webhook-body` ConfigMap through the API, Warnings only; the Bark variant, whose
`{{ . }}` renders a line a person can read; and `eventpipe run --source=...` like the bare
form. The same guides against a real control plane: tests/realkube/test_kube_eventer_guides.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventpipe.cli import translate_resmo_args
from tests.fakeapi import FakeApiServer
from tests.fakes.webhook import WebhookReceiver
from tests.kube_eventer_guides import (
    BARK_BODY,
    SOURCE_FLAG,
    WECOM_BODY,
    kube_eventer_binary,
    sink_flag,
)
from tests.pipeline_harness import (
    child_processes,
    k8s_event,
    wait_for_exit,
    wait_started,
)


def add_body(api: FakeApiServer, content: str) -> None:
    """The guide's ConfigMap monitoring/custom-webhook-body with its `content:` key."""
    api.objects.add_kind("v1", "ConfigMap", "configmaps")
    api.objects.add("ConfigMap", "custom-webhook-body", namespace="monitoring")["data"] = {
        "content": content}


async def deliver(api: FakeApiServer, tmp_path: Path, argv: list[str],
                  hook: WebhookReceiver) -> list[dict[str, Any]]:
    """Run `argv` (env: the fake's kubeconfig, a spool in tmp_path), add a Normal and a
    Warning event, return the bodies the webhook got once the Warning arrived."""
    log = tmp_path / "eventpipe.log"
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"),
           "EVENTPIPE_SPOOL": str(tmp_path / "spool.db"), "PYTHONUNBUFFERED": "1"}
    async with child_processes() as procs:
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=out, env=env)
        procs.append(proc)
        await wait_started(proc, log)
        await api.wait_for_watchers(1, within=20)
        normal = k8s_event("web-0", namespace="shop", reason="Scheduled")
        normal["type"] = "Normal"
        api.add(normal)
        api.add(k8s_event("crashy-0", namespace="shop", count=3,
                          message="Back-off restarting failed container"))
        await hook.wait_for(lambda h: len(h.accepted) >= 1, what="the Warning")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0
    assert all(r.path == "/cgi-bin/webhook/send" and r.query == {"key": "KEY"}
               and r.headers["Content-Type"] == "application/json" for r in hook.accepted)
    return [orjson.loads(r.body) for r in hook.accepted]


async def test_wecom_guide_as_kube_eventer_command(api: FakeApiServer, tmp_path: Path) -> None:
    add_body(api, WECOM_BODY)
    async with WebhookReceiver() as hook:
        argv = [str(kube_eventer_binary(tmp_path)), SOURCE_FLAG,
                sink_flag(hook.url("")), "--metrics-address=127.0.0.1:0"]
        bodies = await deliver(api, tmp_path, argv, hook)
    assert bodies == [{"msgtype": "text", "text": {"content": (
        "集群事件告警\n事件级别: Warning\n名称空间: shop\n事件类型: Pod\n事件对象: crashy-0\n"
        "事件原因: BackOff\n发生时间: 2026-11-23T10:00:00Z\n"
        "详细信息: Back-off restarting failed container")}}]


async def test_bark_variant_renders_the_event_readably(api: FakeApiServer,
                                                       tmp_path: Path) -> None:
    add_body(api, BARK_BODY)
    async with WebhookReceiver() as hook:
        argv = [str(kube_eventer_binary(tmp_path)), "run", SOURCE_FLAG,
                sink_flag(hook.url("")), "--metrics-address=127.0.0.1:0"]
        bodies = await deliver(api, tmp_path, argv, hook)
    assert bodies == [{
        "title": "crashy-0", "icon": "https://kubernetes.io/images/favicon.png",
        "body": "Warning BackOff Pod shop/crashy-0: Back-off restarting failed container "
                "(x3, last seen 2026-11-23T10:00:00Z)"}]


@pytest.mark.parametrize("argv", [
    [SOURCE_FLAG, "--sink=webhook:http://h/x"],
    ["run", SOURCE_FLAG, "--sink=webhook:http://h/x"],
    ["run", "--source", "kubernetes:https://kubernetes.default", "--sink", "webhook:http://h/x"],
])
def test_source_is_accepted_bare_and_by_run(argv: list[str]) -> None:
    from click.testing import CliRunner

    from eventpipe.cli import cli

    result = CliRunner().invoke(cli, [*translate_resmo_args(argv), "--config", "/nonexistent"])
    assert "/nonexistent: cannot read config" in result.output, result.output


def test_source_auth_is_the_kubeconfig_and_other_sources_are_refused() -> None:
    from eventpipe.config.kube_eventer import SinkFlagError, parse_source_flag

    assert parse_source_flag("kubernetes:https://kubernetes.default") is None
    assert parse_source_flag("kubernetes:https://h?inClusterConfig=false&auth=/kc&insecure=true"
                             ) == "/kc"
    with pytest.raises(SinkFlagError, match="expected kubernetes:URL"):
        parse_source_flag("kubernetes.summary_api:''")
    with pytest.raises(SinkFlagError, match="option 'token' is not a kube-eventer source"):
        parse_source_flag("kubernetes:https://h?token=x")
    assert translate_resmo_args([SOURCE_FLAG + "?auth=/kc", "--sink=x"]) == [
        "run", "--source", "kubernetes:https://kubernetes.default.svc.cluster.local?auth=/kc",
        "--sink", "x"]
