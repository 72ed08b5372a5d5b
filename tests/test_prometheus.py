"""The Prometheus side of alerting, with the real tools from `make install` (.tools/bin):
examples/prometheus passes promtool and amtool (its rule unit tests cover every alert), and end
to end a real Prometheus scrapes a real `eventpipe run`, evaluates the shipped BackOff rule and
a real Alertmanager routes the alert to the k8s-event webhook naming the pod. Also the event
counter's cardinality guards (`metrics:` config: seriesTTL, maxSeries, objectNameLabel)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import generate_latest

from eventpipe.app import Pipeline
from eventpipe.config import load_config_text
from eventpipe.metrics import EventCounter, Metrics
from tests.fakeapi import FakeApiServer
from tests.fakes.webhook import WebhookReceiver
from tests.pipeline_harness import (
    REPO,
    child_processes,
    k8s_event,
    metric_samples,
    sample_values,
    scrape,
    start_subprocess,
    wait_for_exit,
    wait_started,
    wait_until_async,
    write_config,
)

EXAMPLES = REPO / "examples" / "prometheus"
TOOLS = REPO / ".tools" / "bin"


def tool(name: str) -> str:
    """Path of an installed tool; a missing tool fails the test (CI runs `make install`)."""
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make install` (scripts/install-prometheus.sh)")
    return str(path)


def run_tool(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_rules_pass_promtool_check() -> None:
    assert "SUCCESS: 10 rules found" in run_tool(tool("promtool"), "check", "rules",
                                                 str(EXAMPLES / "rules.yaml"))


def test_rule_unit_tests_pass_and_cover_every_alert() -> None:
    run_tool(tool("promtool"), "test", "rules", str(EXAMPLES / "rules.test.yaml"))
    alerts = {r["alert"] for g in yaml.safe_load((EXAMPLES / "rules.yaml").read_text())["groups"]
              for r in g["rules"]}
    cases = [c for t in yaml.safe_load((EXAMPLES / "rules.test.yaml").read_text())["tests"]
             for c in t["alert_rule_test"]]
    for alert in alerts:
        outcomes = {bool(c["exp_alerts"]) for c in cases if c["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: needs a firing and a quiet test case"


def test_alertmanager_and_prometheus_configs_pass_their_checks() -> None:
    run_tool(tool("amtool"), "check-config", str(EXAMPLES / "alertmanager.yaml"))
    run_tool(tool("promtool"), "check", "config", str(EXAMPLES / "prometheus.yaml"))


# ---- the event counter's cardinality guards -------------------------------------------------

def _collect(counter: EventCounter) -> dict[tuple[tuple[str, str], ...], float]:
    family = next(iter(counter.collect()))
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples}


def test_series_expire_when_idle_and_the_cap_counts_overflow() -> None:
    now = [0.0]
    counter = EventCounter(prefix="x_", cluster="", series_ttl=60, max_series=2,
                           clock=lambda: now[0])
    counter.inc(("ns", "Pod", "a", "BackOff", "Warning"), 1)
    now[0] = 30
    counter.inc(("ns", "Pod", "b", "BackOff", "Warning"), 2)
    counter.inc(("ns", "Pod", "c", "BackOff", "Warning"), 5)  # cap reached, nothing idle
    assert counter.overflow == 5 and len(_collect(counter)) == 2
    now[0] = 61  # a idle for 61 s: expired, its slot is free again
    counter.inc(("ns", "Pod", "c", "BackOff", "Warning"), 5)
    names = sorted(dict(k)["involved_object_name"] for k in _collect(counter))
    assert names == ["b", "c"] and counter.overflow == 5
    now[0] = 200  # seriesTTL only expires idle series: all idle now
    assert _collect(counter) == {}

    forever = EventCounter(prefix="x_", cluster="", series_ttl=0, clock=lambda: now[0])
    forever.inc(("ns", "Pod", "a", "BackOff", "Warning"), 1)
    now[0] = 1e9
    assert len(_collect(forever)) == 1, "seriesTTL 0 keeps series forever"


def test_object_name_label_off_omits_the_label_and_sums_objects() -> None:
    counter = EventCounter(prefix="x_", cluster="eu", object_name_label=False)
    counter.inc(("ns", "Pod", "web-1", "BackOff", "Warning"), 2)
    counter.inc(("ns", "Pod", "web-2", "BackOff", "Warning"), 3)
    assert _collect(counter) == {(("cluster", "eu"), ("event_type", "Warning"),
                                  ("involved_object_kind", "Pod"), ("namespace", "ns"),
                                  ("reason", "BackOff")): 5.0}


def test_metrics_section_is_wired_into_the_pipeline(tmp_path: Path) -> None:
    config = load_config_text(
        "metrics: {seriesTTL: 10m, maxSeries: 1, objectNameLabel: false}\n", source="t.yaml")
    assert (config.metrics.series_ttl, config.metrics.max_series) == (600.0, 1)
    assert config.metrics.object_name_label is False
    metrics: Metrics = Pipeline(config).metrics
    metrics.events.inc(("ns", "Pod", "web-1", "BackOff", "Warning"), 1)
    metrics.events.inc(("ns", "Node", "n-1", "NodeNotReady", "Normal"), 1)
    samples = metric_samples(generate_latest(metrics.registry).decode())
    assert sample_values(samples, "event_exporter_events_total") == [1.0]
    assert all("involved_object_name" not in dict(labels) for _, labels in samples)
    assert sample_values(samples, "eventpipe_event_series_overflow_total") == [1.0]
    defaults = load_config_text("{}\n", source="t.yaml").metrics
    assert (defaults.series_ttl, defaults.max_series, defaults.object_name_label) == (
        3600.0, 10_000, True)


# ---- end to end: eventpipe -> Prometheus -> Alertmanager -> webhook -------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rules_for_test(tmp: Path) -> Path:
    """rules.yaml unchanged except `for: 0s`, so nothing waits minutes in a test."""
    rules = yaml.safe_load((EXAMPLES / "rules.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    path = tmp / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    return path


def alertmanager_config(tmp: Path, hook: WebhookReceiver) -> Path:
    """The shipped routing with the receivers pointed at `hook` and 1 s grouping waits."""
    config = yaml.safe_load((EXAMPLES / "alertmanager.yaml").read_text())
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        receiver["webhook_configs"][0]["url"] = hook.url(f"/{receiver['name']}")
    path = tmp / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def prometheus_config(tmp: Path, *, target: int, alertmanager: int) -> Path:
    """The shipped example with local ports, 1 s intervals and the test copy of the rules."""
    config = yaml.safe_load((EXAMPLES / "prometheus.yaml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules_for_test(tmp))]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{alertmanager}"]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{target}"]
    path = tmp / "prometheus.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def server(args: Sequence[str], log: Path, port: int) -> AsyncIterator[None]:
    """Run a tool until it answers /-/ready; SIGTERM it (by PID) on the way out."""
    with log.open("ab") as handle:
        proc = await asyncio.create_subprocess_exec(*args, stdout=handle, stderr=handle)
    try:
        async def ready() -> bool:
            if proc.returncode is not None:
                raise AssertionError(f"{args[0]} exited {proc.returncode}:\n{tail(log)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as s, s.get(
                        f"http://127.0.0.1:{port}/-/ready") as resp:
                    return resp.status == 200
            return False
        await wait_until_async(ready, within=20, what=f"{Path(args[0]).name} ready")
        yield
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def query(port: int, promql: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def backoff_alerts(hook: WebhookReceiver, path: str) -> list[dict[str, Any]]:
    return [a for r in hook.accepted if r.path == path for a in r.json()["alerts"]
            if a["labels"]["alertname"] == "KubernetesPodBackOff" and a["status"] == "firing"]


async def test_backoff_storm_alerts_through_prometheus_and_alertmanager(
        api: FakeApiServer, tmp_path: Path) -> None:
    prometheus, alertmanager = tool("prometheus"), tool("alertmanager")
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig",
                          extra={"logLevel": "info", "metrics": {"seriesTTL": "1h"}})
    prom_port, am_port = free_port(), free_port()
    (tmp_path / "prom").mkdir()
    (tmp_path / "am").mkdir()
    async with WebhookReceiver() as hook, child_processes() as procs:
        procs.append(proc := await start_subprocess(config, log=tmp_path / "eventpipe.log"))
        port = await wait_started(proc, tmp_path / "eventpipe.log")
        await api.wait_for_watchers(1, within=20)
        async with server([alertmanager, f"--config.file={alertmanager_config(tmp_path, hook)}",
                           f"--storage.path={tmp_path / 'am'}",
                           f"--web.listen-address=127.0.0.1:{am_port}",
                           "--cluster.listen-address="], tmp_path / "am.log", am_port), \
                server([prometheus,
                        "--config.file=" + str(prometheus_config(
                            tmp_path, target=port, alertmanager=am_port)),
                        f"--storage.tsdb.path={tmp_path / 'prom'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}"],
                       tmp_path / "prom.log", prom_port):
            uid = api.add(k8s_event("crashy-0", namespace="shop"))["metadata"]["uid"]
            series = 'event_exporter_events_total{involved_object_name="crashy-0"}'

            async def scraped() -> bool:
                return bool(await query(prom_port, series))
            await wait_until_async(scraped, within=20, what="Prometheus scraped the series")
            for _ in range(10):  # the storm: the kubelet bumping the event's count
                api.bump_count(uid)
                await asyncio.sleep(0.3)
            await hook.wait_for(lambda h: bool(backoff_alerts(h, "/k8s-events")), within=40,
                                what="KubernetesPodBackOff at the k8s-events webhook")

            async def counted_all() -> bool:
                return sample_values(await scrape(port), "event_exporter_events_total",
                                     involved_object_name="crashy-0") == [11.0]
            await wait_until_async(counted_all, within=10, what="all 11 occurrences counted")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=15) == 0

    alert = backoff_alerts(hook, "/k8s-events")[0]
    assert alert["labels"]["involved_object_name"] == "crashy-0"
    assert alert["labels"]["namespace"] == "shop"
    assert alert["labels"]["source"] == "k8s-event"
    assert "shop/crashy-0" in alert["annotations"]["summary"]
    assert "pod crashy-0 in namespace shop" in alert["annotations"]["description"]
    # Routing: k8s-event alerts never reach the default (eventpipe operators') receiver.
    assert not [a for r in hook.accepted if r.path == "/default"
                for a in r.json()["alerts"] if a["labels"].get("source") == "k8s-event"]
