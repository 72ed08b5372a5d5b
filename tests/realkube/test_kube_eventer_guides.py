"""The kube-eventer WeCom guide against a real API server: `/kube-eventer` with the guide's
flags, authenticated as a ServiceAccount holding only the ClusterRole the guide grants
(events and configmaps: get, list, watch), reads the body template from the real ConfigMap
monitoring/custom-webhook-body and posts the rendered Warning."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from pathlib import Path

import orjson

from tests.fakes.webhook import WebhookReceiver
from tests.kube_eventer_guides import (
    GUIDE_RULES,
    SOURCE_FLAG,
    WECOM_BODY,
    kube_eventer_binary,
    sink_flag,
)
from tests.pipeline_harness import child_processes, wait_for_exit, wait_started
from tests.realkube.controlplane import ControlPlane, write_kubeconfig


def apply(kube: ControlPlane, *objects: dict[str, object]) -> None:
    kube.kubectl("apply", "-f", "-",
                 input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def guide_account(kube: ControlPlane, tmp_path: Path) -> Path:
    """A kubeconfig for monitoring/kube-eventer, bound to the guide's ClusterRole only."""
    name = f"kube-eventer-{uuid.uuid4().hex[:6]}"
    apply(kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}})
    apply(kube,
          {"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": name, "namespace": "monitoring"}},
          {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name}, "rules": GUIDE_RULES},
          {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                       "name": name},
           "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "monitoring"}]},
          {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "custom-webhook-body", "namespace": "monitoring"},
           "data": {"content": WECOM_BODY}})
    token = kube.kubectl("-n", "monitoring", "create", "token", name).strip()
    return write_kubeconfig(tmp_path / "kubeconfig", kube.server, kube.pki.ca, token=token)


async def test_wecom_guide_with_the_guide_rbac(kube: ControlPlane, tmp_path: Path) -> None:
    kubeconfig = guide_account(kube, tmp_path)
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", namespace)
    log = tmp_path / "eventpipe.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1",
           "EVENTPIPE_SPOOL": str(tmp_path / "spool.db")}
    async with WebhookReceiver() as hook, child_processes() as procs:
        with log.open("ab") as out:
            procs.append(proc := await asyncio.create_subprocess_exec(
                str(kube_eventer_binary(tmp_path)), SOURCE_FLAG, sink_flag(hook.url("")),
                "--metrics-address=127.0.0.1:0", stdout=out, stderr=out, env=env))
        await wait_started(proc, log, within=60)
        for name, kind in (("started", "Normal"), ("crashy-0", "Warning")):
            kube.kubectl("-n", namespace, "create", "-f", "-", input_text=json.dumps({
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
                "reason": "BackOff" if kind == "Warning" else "Started", "type": kind,
                "message": "Back-off restarting failed container",
                "lastTimestamp": "2026-11-23T10:00:00Z"}))

        def mine() -> list[str]:
            return [text for r in hook.accepted
                    if f"名称空间: {namespace}\n" in (text := orjson.loads(r.body)["text"]
                                                     ["content"])]
        await hook.wait_for(lambda _: bool(mine()), within=60, what="the Warning at WeCom")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=20) == 0
    assert mine() == [
        f"集群事件告警\n事件级别: Warning\n名称空间: {namespace}\n事件类型: Pod\n"
        "事件对象: crashy-0\n事件原因: BackOff\n发生时间: 2026-11-23T10:00:00Z\n"
        "详细信息: Back-off restarting failed container"]
    assert all(r.path == "/cgi-bin/webhook/send" and r.query == {"key": "KEY"}
               for r in hook.accepted)
