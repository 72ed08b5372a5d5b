"""The Prometheus alerting guide's setup, run unchanged: its config (`metricsReceiver.port`, a
`metrics` receiver) through resmo's `-conf=` flag, scraped by a real Prometheus that evaluates
the guide's three rules verbatim, plus the shipped rule for what real node controllers report
(`NodeNotReady`). Also what a metrics receiver counts: the events its route sends it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    child_processes,
    k8s_event,
    running,
    sample_values,
    scrape,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until_async,
    write_config,
)
from tests.test_prometheus import EXAMPLES, free_port, query, server, tool

GUIDE_CONFIG = """\
logLevel: info
logFormat: json
metricsReceiver:
  port: 9102
route:
  routes:
    - match:
        - receiver: "metrics-receiver"
receivers:
  - name: "metrics-receiver"
    metrics: {}
"""

GUIDE_RULES = """\
groups:
  - name: guide
    rules:
      - alert: KubernetesWarningEvent
        expr: increase(event_exporter_events_total{event_type="Warning"}[5m]) > 0
        annotations:
          summary: "{{ $labels.reason }} on {{ $labels.involved_object_kind }} {{ $labels.namespace }}/{{ $labels.involved_object_name }}"
      - alert: KubernetesPodBackOff
        expr: increase(event_exporter_events_total{reason="BackOff", involved_object_kind="Pod"}[10m]) > 3
        annotations:
          summary: "Pod {{ $labels.namespace }}/{{ $labels.involved_object_name }} ({{ $labels.reason }})"
      - alert: KubernetesNodeNotReady
        expr: increase(event_exporter_events_total{reason="NotReady", involved_object_kind="Node"}[5m]) > 0
        annotations:
          summary: "Node {{ $labels.involved_object_name }} is {{ $labels.reason }}"
"""  # noqa: E501 (the guide's rules, verbatim)


def node_event(node: str, reason: str) -> dict[str, Any]:
    """An Event about a Node as the node controller writes one (type Normal)."""
    event = k8s_event(node, reason=reason, message=f"Node {node} status is now: {reason}")
    event["involvedObject"] = {"kind": "Node", "name": node}
    event["type"] = "Normal"
    event["source"] = {"component": "node-controller"}
    return event


def shipped_node_rule() -> dict[str, Any]:
    """examples/prometheus/rules.yaml's NodeNotReady rule (both reasons), renamed."""
    rules = yaml.safe_load((EXAMPLES / "rules.yaml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"]
               if r["alert"] == "KubernetesNodeNotReady"]
    assert 'reason=~"NodeNotReady|NotReady"' in rule["expr"]
    return {**rule, "alert": "ShippedNodeNotReady"}


async def firing(port: int) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{port}/api/v1/alerts") as resp:
        body = await resp.json()
    return [a for a in body["data"]["alerts"] if a["state"] == "firing"]


async def test_guide_config_and_rules_fire_in_a_real_prometheus(
        api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(GUIDE_CONFIG.replace("9102", str(port)))  # a free port, nothing else
    monkeypatch.setenv("EVENTPIPE_SPOOL", str(tmp_path / "spool.db"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    rules = yaml.safe_load(GUIDE_RULES)
    rules["groups"][0]["rules"].append(shipped_node_rule())
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    prom_port = free_port()
    (tmp_path / "prometheus.yaml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yaml")],
        "scrape_configs": [{"job_name": "event-exporter", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}))
    log = tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        procs.append(proc := await start_subprocess(config, log=log,
                                                    argv=[f"-conf={config}"]))
        assert await wait_started(proc, log) == port
        await api.wait_for_watchers(1, within=20)
        async with server([tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yaml'}",
                           f"--storage.tsdb.path={tmp_path / 'prom'}",
                           f"--web.listen-address=127.0.0.1:{prom_port}"],
                          tmp_path / "prom.log", prom_port):
            async def scraping() -> bool:
                return [r["value"][1] for r in await query(prom_port, "up")] == ["1"]
            await wait_until_async(scraping, within=20, what="Prometheus scraping eventpipe")
            uid = api.add(k8s_event("crashy-0", namespace="shop"))["metadata"]["uid"]
            api.add(node_event("node-a", "NotReady"))  # once each: a new series fires too
            api.add(node_event("node-b", "NodeNotReady"))
            for _ in range(5):  # the kubelet bumping the BackOff event's count
                api.bump_count(uid)
                await asyncio.sleep(0.5)

            def names(alerts: list[dict[str, Any]]) -> set[tuple[str, str]]:
                return {(a["labels"]["alertname"], a["labels"]["involved_object_name"])
                        for a in alerts}
            expected = {("KubernetesWarningEvent", "crashy-0"),
                        ("KubernetesPodBackOff", "crashy-0"),
                        ("KubernetesNodeNotReady", "node-a"),
                        ("ShippedNodeNotReady", "node-a"), ("ShippedNodeNotReady", "node-b")}

            async def all_firing() -> bool:
                return expected <= names(await firing(prom_port))
            await wait_until_async(all_firing, within=60, what=f"alerts {sorted(expected)}")
            alerts = await firing(prom_port)
            assert names(alerts) == expected, "Normal node events are not Warnings"
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0
    backoff = next(a for a in alerts if a["labels"]["alertname"] == "KubernetesPodBackOff")
    assert backoff["labels"]["namespace"] == "shop"
    assert backoff["labels"]["involved_object_kind"] == "Pod"
    assert backoff["annotations"]["summary"] == "Pod shop/crashy-0 (BackOff)"
    node = next(a for a in alerts if a["labels"]["alertname"] == "KubernetesNodeNotReady")
    assert node["annotations"]["summary"] == "Node node-a is NotReady"


async def test_metrics_receiver_counts_what_its_route_sends_it(
        api: FakeApiServer, tmp_path: Path) -> None:
    """The guide's commented "only Warning" rule: with it, Normal events are not counted;
    every occurrence of the Warnings is (the count deltas of every version)."""
    config = write_config(
        tmp_path, kubeconfig=tmp_path / "kubeconfig",
        receivers=[{"name": "metrics-receiver", "metrics": {"newSeriesAtZero": False}}],
        route={"routes": [{"match": [{"receiver": "metrics-receiver", "type": "Warning"}]}]})
    async with running(config) as pipeline:
        uid = api.add(k8s_event("crashy-0", namespace="shop"))["metadata"]["uid"]
        api.add(node_event("node-a", "NodeNotReady"))
        api.bump_count(uid)
        api.bump_count(uid)

        async def counted() -> bool:
            samples = await scrape(pipeline.http.port)
            return sample_values(samples, "event_exporter_events_total",
                                 involved_object_name="crashy-0") == [3.0]
        await wait_until_async(counted, within=20, what="3 BackOff occurrences counted")
        samples = await scrape(pipeline.http.port)
        assert sample_values(samples, "event_exporter_events_total",
                             involved_object_name="node-a") == []
        assert sample_values(samples, "eventpipe_spool_events_total") == [4.0]  # all stored


async def test_new_series_start_at_zero_for_one_scrape(
        api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          receivers=[{"name": "m", "metrics": {}}],
                          route={"routes": [{"match": [{"receiver": "m"}]}]})
    async with running(config) as pipeline:
        api.add(k8s_event("crashy-0", namespace="shop"))

        async def seen() -> list[float]:
            return sample_values(await scrape(pipeline.http.port),
                                 "event_exporter_events_total", involved_object_name="crashy-0")

        async def exported() -> bool:
            return bool(await seen())
        await wait_until_async(exported, within=20, what="the series exported")
        # The scrape that found it saw 0; the next one sees the occurrence.
        assert await seen() == [1.0]


def test_replay_to_a_metrics_receiver_is_refused(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from eventpipe.cli import cli

    config = tmp_path / "config.yaml"
    config.write_text(GUIDE_CONFIG + f"spool: {{path: {tmp_path / 'spool.db'}}}\n")
    result = CliRunner().invoke(cli, ["replay", "--config", str(config),
                                      "--receiver", "metrics-receiver", "--since", "1h"])
    assert result.exit_code == 2
    assert "'metrics-receiver' is a metrics receiver" in result.output
    assert not (tmp_path / "spool.db").exists()
