"""How users connect, against the real API server's TLS."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from tests.pipeline_harness import (
    child_processes,
    log_records,
    read_lines,
    start_subprocess,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane, Pki, write_kubeconfig
from tests.realkube.watching import start_watching


async def test_wrong_ca_is_refused_with_a_clear_message(kube: ControlPlane,
                                                        tmp_path: Path) -> None:
    """A kubeconfig trusting another CA: the real server's certificate is refused, the log
    names the verification failure, and nothing is delivered."""
    other = tmp_path / "other-ca"
    other.mkdir()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.server, Pki(other).ca,
                                  kube.root / "admin.crt", kube.root / "admin.key")
    config = write_config(tmp_path, kubeconfig=kubeconfig)
    log = tmp_path / "eventpipe.log"

    def refusals() -> list[dict[str, object]]:
        return [r for r in log_records(log) if r.get("msg") == "watch failed, retrying"
                and "CERTIFICATE_VERIFY_FAILED" in str(r.get("error"))]

    async with child_processes() as procs:
        procs.append(await start_subprocess(config, log=log))
        await wait_until(lambda: bool(refusals()), within=60, what="a TLS verification error")
        assert procs[0].returncode is None, "a wrong CA is retried, not fatal"
    assert read_lines(tmp_path / "events.jsonl") == []


async def test_bearer_token_kubeconfig_watches(kube: ControlPlane, tmp_path: Path) -> None:
    """A ServiceAccount token from the real TokenRequest API, bound to the built-in `view`
    ClusterRole, in a kubeconfig without client certificates: events are delivered."""
    namespace = f"token-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    kube.kubectl("-n", namespace, "create", "serviceaccount", "reader")
    kube.kubectl("create", "clusterrolebinding", f"{namespace}-view", "--clusterrole=view",
                 f"--serviceaccount={namespace}:reader")
    token = kube.kubectl("-n", namespace, "create", "token", "reader").strip()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.server, kube.pki.ca,
                                  token=token)
    log = tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(await start_watching(write_config(tmp_path, kubeconfig=kubeconfig), log))
        kube.kubectl("-n", namespace, "create", "-f", "-", input_text=json.dumps({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "hello"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
            "reason": "Hello", "message": "hi", "type": "Normal"}))
        await wait_until(lambda: any(
            e["metadata"]["namespace"] == namespace and e["reason"] == "Hello"
            for e in read_lines(tmp_path / "events.jsonl")), within=60,
            what="the event through a token-authenticated watch")


async def test_in_cluster_service_account_watches(kube: ControlPlane, tmp_path: Path) -> None:
    """In-cluster mode as a pod runs it: no kubeconfig anywhere, KUBERNETES_SERVICE_HOST/PORT
    pointing at the API server, and a service-account token (TokenRequest) with the CA in
    the mounted folder ($EVENTPIPE_SERVICE_ACCOUNT_DIR stands in for the kubelet's path)."""
    namespace = f"pod-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    kube.kubectl("-n", namespace, "create", "serviceaccount", "eventpipe")
    kube.kubectl("create", "clusterrolebinding", f"{namespace}-view", "--clusterrole=view",
                 f"--serviceaccount={namespace}:eventpipe")
    mounted = tmp_path / "serviceaccount"
    mounted.mkdir()
    (mounted / "token").write_text(
        kube.kubectl("-n", namespace, "create", "token", "eventpipe").strip())
    (mounted / "ca.crt").write_bytes(kube.pki.ca.read_bytes())
    (mounted / "namespace").write_text(namespace)
    home = tmp_path / "home"  # no ~/.kube/config to fall back on
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    env.update(HOME=str(home), KUBERNETES_SERVICE_HOST="127.0.0.1",
               KUBERNETES_SERVICE_PORT=str(kube.api_port),
               EVENTPIPE_SERVICE_ACCOUNT_DIR=str(mounted))
    config = write_config(tmp_path, kubeconfig=tmp_path / "unused",
                          extra={"kubeconfig": None})
    log = tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(await start_watching(config, log, env=env))
        kube.kubectl("-n", namespace, "create", "-f", "-", input_text=json.dumps({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "inside"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
            "reason": "InCluster", "message": "hi", "type": "Normal"}))
        await wait_until(lambda: any(
            e["metadata"]["namespace"] == namespace and e["reason"] == "InCluster"
            for e in read_lines(tmp_path / "events.jsonl")), within=60,
            what="the event through the in-cluster service account")
