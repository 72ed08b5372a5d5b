"""Least privilege for real: the Helm chart's manifests (`helm template`) go through
server-side apply, which validates each against the real API schemas; eventpipe then runs with
a TokenRequest token of the chart's ServiceAccount and the chart's own config, so it has
exactly the chart's RBAC and nothing else.

- All namespaces (the ClusterRole) with leader election: the watch delivers, enrichment reads
  the controllers' Pod → ReplicaSet → Deployment, and the Lease is taken in the release
  namespace (the leader-election Role).
- Namespaced mode (Roles in the chart's `watch.namespaces`): those namespaces deliver; a
  namespace the chart granted nothing in gets the API server's own 403, named in the log and
  in `/readyz`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.pipeline_harness import (
    child_processes,
    http_get,
    log_records,
    read_lines,
    start_subprocess,
    wait_started,
    wait_until,
    wait_until_async,
)
from tests.realkube.controlplane import REPO, ControlPlane, write_kubeconfig
from tests.realkube.watching import start_watching

CHART = REPO / "charts" / "eventpipe"
HELM = REPO / ".tools" / "bin" / "helm"


def chart(kube: ControlPlane, release_namespace: str, *values: str) -> list[dict[str, Any]]:
    """`helm template` of the chart (what `helm install` creates: no `helm test` hooks),
    applied server-side; the rendered documents."""
    assert HELM.is_file(), f"{HELM} is missing: run `make install` (scripts/install-helm.sh)"
    done = subprocess.run([str(HELM), "template", "rel", str(CHART), "--namespace",
                           release_namespace, "--skip-tests", *values],
                          capture_output=True, text=True, timeout=60, check=True)
    kube.kubectl("apply", "--server-side", "--field-manager=chart-test", "-f", "-",
                 input_text=done.stdout)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The rendered document of `kind` (exactly one)."""
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def run_as_chart(kube: ControlPlane, docs: list[dict[str, Any]], tmp_path: Path,
                 **overrides: Any) -> tuple[Path, dict[str, str]]:
    """The chart's config (from its ConfigMap) with local paths and a file receiver, a
    kubeconfig holding a token of the chart's ServiceAccount, and the pod's environment."""
    account = one(docs, "ServiceAccount")["metadata"]
    token = kube.kubectl("-n", account["namespace"], "create", "token", account["name"]).strip()
    config = yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])
    config.update(
        kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", kube.server, kube.pki.ca,
                                        token=token)),
        http={"address": "127.0.0.1", "port": 0},
        route={"routes": [{"match": [{"receiver": "dump"}]}]},
        receivers=[{"name": "dump", "file": {"path": str(tmp_path / "events.jsonl")}}],
        **overrides)
    config["spool"]["path"] = str(tmp_path / "spool.db")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "POD_NAMESPACE": account["namespace"], "POD_NAME": "rel-eventpipe-0"}
    return path, env


def create_event(kube: ControlPlane, namespace: str, name: str) -> None:
    """A core/v1 Event about a Pod, written as cluster admin."""
    kube.kubectl("-n", namespace, "create", "-f", "-", input_text=json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
        "reason": "ChartTest", "message": name, "type": "Normal"}))


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: registry.invalid/web:1}}]}}
"""


async def test_cluster_wide_chart_rbac_watches_enriches_and_leads(kube: ControlPlane,
                                                                  tmp_path: Path) -> None:
    release = f"obs-{uuid.uuid4().hex[:8]}"
    apps = f"apps-{uuid.uuid4().hex[:8]}"
    for namespace in (release, apps):
        kube.kubectl("create", "namespace", namespace)
    docs = await asyncio.to_thread(chart, kube, release, "-f",
                                   str(CHART / "ci" / "leader-election-values.yaml"))
    assert {d["kind"] for d in docs} >= {"ClusterRole", "ClusterRoleBinding", "Role",
                                         "RoleBinding", "ServiceAccount", "StatefulSet"}
    config, env = run_as_chart(kube, docs, tmp_path)
    sink = tmp_path / "events.jsonl"

    def enriched() -> list[dict[str, Any]]:
        return [e for e in read_lines(sink) if e["metadata"]["namespace"] == apps
                and e["involvedObject"]["kind"] == "Pod"
                and e["involvedObject"].get("owner") == {"kind": "Deployment", "name": "web"}]

    async with child_processes() as procs:
        procs.append(await start_watching(config, tmp_path / "eventpipe.log", env=env))
        await asyncio.to_thread(kube.kubectl, "apply", "-f", "-",
                                input_text=DEPLOYMENT.format(ns=apps))
        await wait_until(lambda: bool(enriched()), within=120,
                         what="a Pod event enriched up to its Deployment")
        lease = json.loads(await asyncio.to_thread(
            kube.kubectl, "-n", release, "get", "lease", "eventpipe-leader", "-o", "json"))
    assert lease["spec"]["holderIdentity"] == "rel-eventpipe-0"
    assert enriched()[0]["involvedObject"]["labels"]["app"] == "web"
    assert not [r for r in log_records(tmp_path / "eventpipe.log")
                if "forbidden" in str(r.get("error", "")).lower()], "a request RBAC refused"


async def test_namespaced_chart_rbac_and_the_real_403(kube: ControlPlane,
                                                      tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    release, team_a, team_b, other = (f"{p}-{suffix}" for p in ("obs", "ta", "tb", "other"))
    for namespace in (release, team_a, team_b, other):
        kube.kubectl("create", "namespace", namespace)
    docs = await asyncio.to_thread(chart, kube, release, "--set",
                                   f"config.watch.namespaces={{{team_a},{team_b}}}")
    assert "ClusterRole" not in {d["kind"] for d in docs}
    assert {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"} == {team_a, team_b}
    # The chart's Roles cover team_a and team_b; eventpipe is also told to watch `other`.
    config, env = run_as_chart(kube, docs, tmp_path,
                               watch={"namespaces": [team_a, team_b, other]})
    log = tmp_path / "eventpipe.log"
    sink = tmp_path / "events.jsonl"
    async with child_processes() as procs:
        procs.append(await start_subprocess(config, log=log, env=env))
        port = await wait_started(procs[0], log, within=60)

        def refusal() -> list[dict[str, Any]]:
            return [r for r in log_records(log) if r.get("namespace") == other
                    and str(r.get("msg", "")).startswith("cannot list/watch events")]

        await wait_until(lambda: bool(refusal()), within=60, what="the 403 named in the log")

        async def readiness() -> dict[str, Any]:
            status, body = await http_get(port, "/readyz")
            assert status == 503, body
            return dict(json.loads(body))

        async def granted_watching() -> bool:
            ready = (await readiness())["namespaces"]
            return bool(ready[team_a] == ready[team_b] == "watching")

        await wait_until_async(granted_watching, within=60, what="the granted namespaces")
        for namespace in (team_a, team_b, other):
            await asyncio.to_thread(create_event, kube, namespace, f"in-{namespace}")
        await wait_until(lambda: {e["metadata"]["namespace"] for e in read_lines(sink)}
                         >= {team_a, team_b}, within=60, what="the granted namespaces' events")
        state = (await readiness())["namespaces"][other]
    (record,) = refusal()
    user = f"system:serviceaccount:{release}:{one(docs, 'ServiceAccount')['metadata']['name']}"
    for text in (record["error"], state):
        assert "403" in text or "Forbidden" in text, text
        assert user in text and f'namespace "{other}"' in text, text
    assert state.startswith(f"forbidden: cannot list/watch events in namespace {other}")
    assert other not in {e["metadata"]["namespace"] for e in read_lines(sink)}
