"""`eventpipe demo`: the CLI end to end, the simulated cluster against the real client, the
bundled sample, the config merge and the summary."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from eventpipe.config import ConfigError, load_config
from eventpipe.demo import DemoOptions, Scenario, SimulatedCluster, demo_config, run_demo
from eventpipe.demo.sample import LICENSED_SOURCES, build, dump, load_sample
from eventpipe.demo.summary import Summary
from eventpipe.kube.client import connect
from eventpipe.metrics import Metrics
from eventpipe.watch.api import KubeEventsApi
from tests.pipeline_harness import CORPUS, REPO, child_processes


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[str]:
    while line := await stream.readline():
        yield line.decode()


async def test_demo_command_end_to_end(tmp_path: Path) -> None:
    """The CLI as a user runs it: exits 0 by itself, prints summaries, serves /metrics while
    running, and the file receiver holds what the real client read from the cluster."""
    folder = tmp_path / "demo"
    out: list[str] = []
    scraped = ""
    async with child_processes() as procs:  # killed if the test fails before it exits
        procs.append(proc := await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventpipe", "demo", "--duration", "5", "--dir", str(folder),
            "--port", "0", "--rate", "40", cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)}))
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            async for line in _lines(proc.stdout):
                out.append(line)
                url = re.match(r"metrics: (http://\S+)", line)
                if url:
                    metrics_url = url.group(1)
                if line.startswith("demo ") and "delivered" in line and not scraped:
                    async with aiohttp.ClientSession() as session, \
                            session.get(metrics_url) as r:
                        assert r.status == 200
                        scraped = await r.text()
            code = await proc.wait()
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert code == 0, "".join(out) + stderr

    summaries = [line for line in out if line.startswith("demo ")]
    assert len(summaries) >= 3, out  # one a second for 5 s, plain lines (stdout is a pipe)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped) for s in family.samples}
    assert samples[("eventpipe_spool_events_total", ())] > 0
    assert any(name == "event_exporter_events_total" for name, _ in samples)

    # The real kubernetes-asyncio client listed, then watched.
    served = next(line for line in out if line.startswith("simulated cluster served"))
    assert re.search(r"served 1 list and [1-9]\d* watch requests", served), served
    assert "OpenAPI-Generator" in served  # kubernetes-asyncio's User-Agent

    events = [orjson.loads(line) for line in (folder / "events.jsonl").read_bytes().splitlines()]
    delivered = int(re.search(r"demo-file: delivered (\d+)", summaries[-1]).group(1))  # type: ignore[union-attr]
    assert len(events) == delivered > 50
    assert all(e["kind"] == "Event" and e["metadata"]["resourceVersion"] for e in events)
    by_uid: dict[str, list[int]] = {}
    for e in events:
        by_uid.setdefault(e["metadata"]["uid"], []).append(
            (e.get("series") or {}).get("count") or e.get("count") or 1)
    storms = [counts for counts in by_uid.values() if len(counts) > 1]
    assert storms and all(c == sorted(c) for c in storms)  # merged events: counts grow


async def test_cluster_speaks_list_and_watch_to_the_real_client(tmp_path: Path) -> None:
    async with SimulatedCluster() as cluster:
        scenario = Scenario(cluster, load_sample(), rate=10, seed=1)
        scenario.preload(5)
        client = await connect(str(cluster.write_kubeconfig(tmp_path / "kubeconfig")))
        try:
            api = KubeEventsApi(client, api_group="core", namespace="")
            resp = await api.request(limit=2)
            page = orjson.loads(await resp.read())
            assert len(page["items"]) == 2 and page["metadata"]["continue"]
            rest = orjson.loads(await (await api.request(
                limit=10, _continue=page["metadata"]["continue"])).read())
            assert len(rest["items"]) == 3 and "continue" not in rest["metadata"]
            list_rv = page["metadata"]["resourceVersion"]

            first = page["items"][0]
            cluster.put({**first, "count": 41})  # a merged event's count grows
            resp = await api.request(watch=True, resource_version=list_rv, timeout_seconds=1)
            lines = [orjson.loads(x) for x in (await resp.read()).splitlines()]
            assert [(x["type"], x["object"]["metadata"]["uid"], x["object"]["count"])
                    for x in lines] == [("MODIFIED", first["metadata"]["uid"], 41)]

            resp = await api.request(watch=True, resource_version="1", timeout_seconds=1)
            gone = orjson.loads(await resp.read())
            assert gone["type"] == "ERROR" and gone["object"]["code"] == 410
        finally:
            await client.close()
    assert cluster.requests == {"list": 2, "watch": 2}


async def test_demo_pushes_to_receivers_from_a_file(tmp_path: Path) -> None:
    """--receivers: the file's receivers and route are merged; its route still applies."""
    got: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        receivers = tmp_path / "sinks.yaml"
        receivers.write_text(f"""
route:
  routes:
    - match:
        - type: Warning
          receiver: hook
receivers:
  - name: hook
    webhook:
      endpoint: http://127.0.0.1:{port}/hook
""")
        out = io.StringIO()
        code = await run_demo(DemoOptions(directory=tmp_path / "d", port=0, rate=50,
                                          duration=2.0, receivers_file=receivers, seed=3),
                              out=out, tty=False)
    finally:
        await runner.cleanup()
    assert code == 0, out.getvalue()
    assert got and all(e["type"] == "Warning" for e in got)
    lines = (tmp_path / "d" / "events.jsonl").read_bytes().splitlines()
    assert len(lines) > len(got)  # the demo's file receiver still gets everything
    assert "hook: delivered" in out.getvalue()


def test_merge_rejects_a_clashing_receiver_name(tmp_path: Path) -> None:
    extra = tmp_path / "x.yaml"
    extra.write_text("route: {routes: [{match: [{receiver: demo-file}]}]}\n"
                     "receivers: [{name: demo-file, stdout: {}}]\n")
    with pytest.raises(ConfigError, match="duplicate receiver name 'demo-file'"):
        demo_config(DemoOptions(receivers_file=extra), load_config(extra))
    config = demo_config(DemoOptions(), load_config(REPO / "examples" / "demo.yaml"))
    assert [r.name for r in config.receivers] == ["demo-file", "loki", "elasticsearch"]
    assert config.http.address == "127.0.0.1"


def test_summary_redraws_on_a_terminal_and_prints_lines_otherwise() -> None:
    metrics = Metrics()
    metrics.sink_sent.labels("demo-file").inc(7)
    cluster = SimulatedCluster()
    scenario = Scenario(cluster, load_sample(), rate=1)
    for tty in (False, True):
        out = io.StringIO()
        summary = Summary(metrics=metrics, receivers=["demo-file"], spool_path=Path("none.db"),
                          cluster=cluster, scenario=scenario, out=out, tty=tty)
        summary.show()
        summary.show()
        text = out.getvalue()
        if tty:
            assert text.count("\x1b[5F\x1b[J") == 1  # the second block replaces the first
            assert re.search(r"demo-file\s+7\s+0", text)
        else:
            assert "\x1b" not in text and text.count("\n") == 2
            assert "demo-file: delivered 7 lag 0" in text


def test_sample_is_verbatim_from_permissively_licensed_sources() -> None:
    sources = (CORPUS / "SOURCES.md").read_text()
    for name, licence in LICENSED_SOURCES.items():
        row = next(line for line in sources.splitlines() if line.startswith(f"| `{name}`"))
        assert f"| {licence} |" in row and licence in ("Apache-2.0", "MIT")
    originals = {orjson.dumps(orjson.loads(line))
                 for name in LICENSED_SOURCES
                 for line in (CORPUS / name).read_bytes().splitlines() if line.strip()}
    sample = load_sample()
    assert 200 <= len(sample) <= 400
    assert all(orjson.dumps(event) in originals for event in sample)  # every field kept
    reasons = {e.get("reason") for e in sample}
    assert {"BackOff", "FailedScheduling", "NodeReady"} <= reasons


def test_sample_rebuilds_byte_for_byte_from_the_repository_corpus() -> None:
    bundled = (REPO / "eventpipe" / "demo" / "events.json").read_bytes()
    assert dump(build(CORPUS)) == bundled
