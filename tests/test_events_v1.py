"""events.k8s.io/v1 and core/v1 are two views of the same Events: watched through either, the
same config must route the same versions to the same receivers, render layouts the same and
count the same metric series. Only a receiver without a layout shows the difference: it writes
the object exactly as the chosen API served it.

Two pipelines run side by side against one fake API server (one store), one per API group, so
they see the same LIST and the same watch versions."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from eventpipe.app import Pipeline
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    corpus_files,
    k8s_event,
    read_lines,
    running,
    wait_until,
    write_config,
)

LAYOUT = {
    "line": "{{ .InvolvedObject.Name }} {{ .Message }} {{ .Count }} {{ .Source.Component }}",
    "object": "{{ .InvolvedObject.Kind }}/{{ .InvolvedObject.Namespace }}",
    "host": "{{ .Source.Host }}",
    "reporting": "{{ .ReportingController }}",
    "first": "{{ .FirstTimestamp }}",
    "last": "{{ .LastTimestamp }}",
    "time": "{{ .GetTimestampISO8601 }}",
    "version": "{{ .UID }}/{{ .ResourceVersion }}",
}
# Each receiver takes what one rule matches; `everything` and `raw` take all.
RULES: dict[str, dict[str, Any]] = {
    "by-message": {"message": "(?i)back-?off|failed"},
    "by-kubelet": {"component": "^kubelet$"},
    "by-scheduler": {"component": "^default-scheduler$"},  # core: reportingComponent only
    "by-node-controller": {"component": "^node-controller$"},
    "by-kind": {"kind": "^(Node|ReplicaSet)$"},
    "by-count": {"minCount": 3},
    "by-all": {"message": "(?i)pull", "component": "kubelet", "kind": "^Pod$", "minCount": 1},
    "everything": {},
}
SMALL_CORPUS = [p for p in corpus_files() if not p.name.startswith("03_")]


def group_config(tmp: Path, group: str) -> Path:
    """One pipeline's config: its own spool and files under tmp/group/, the shared routes."""
    folder = tmp / group
    folder.mkdir()
    receivers = [{"name": name, "file": {"path": str(folder / f"{name}.jsonl"),
                                         "layout": LAYOUT}} for name in RULES]
    receivers.append({"name": "raw", "file": {"path": str(folder / "raw.jsonl")}})
    routes = [{"match": [{**rule, "receiver": name}]} for name, rule in RULES.items()]
    routes.append({"match": [{"receiver": "raw"}]})
    return write_config(folder, kubeconfig=tmp / "kubeconfig", receivers=receivers,
                        route={"routes": routes},
                        extra={"logLevel": "info", "watch": {"apiGroup": group}})


def events_v1_event(name: str) -> dict[str, Any]:
    """An Event written through events.k8s.io/v1 (a controller's new-style recorder)."""
    return {
        "kind": "Event", "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": f"{name}.18b2", "namespace": "default"},
        "regarding": {"kind": "Node", "name": name, "apiVersion": "v1"},
        "note": f"Node {name} status is now: NodeNotReady", "reason": "NodeNotReady",
        "type": "Warning", "action": "NodeControllerUpdate",
        "eventTime": "2026-11-23T10:00:00.123456Z",
        "reportingController": "node-controller", "reportingInstance": "cp-0",
        "series": {"count": 4, "lastObservedTime": "2026-11-23T10:05:00.000000Z"},
    }


def settled(pipeline: Pipeline, total: int) -> bool:
    """Every version is spooled and every receiver's cursor is past it."""
    return (pipeline.metrics.spool_events._value.get() == total
            and all(w.acked_seq == total for w in pipeline.workers))


def series(pipeline: Pipeline) -> dict[tuple[str, ...], float]:
    return {key: entry[0] for key, entry in pipeline.metrics.events._series.items()}


def sent(pipeline: Pipeline) -> dict[str, float]:
    return {w.name: pipeline.metrics.sink_sent.labels(w.name)._value.get()
            for w in pipeline.workers}


async def test_both_api_groups_route_render_and_count_alike(api: FakeApiServer,
                                                            tmp_path: Path) -> None:
    api.load_corpus(SMALL_CORPUS)
    listed = len({c.uid for c in api.store.changes_after(0, 10**9)
                  if c.type in ("ADDED", "MODIFIED")})
    core_cfg, v1_cfg = group_config(tmp_path, "core"), group_config(tmp_path, "events.k8s.io")
    async with running(core_cfg) as core, running(v1_cfg) as v1:
        # Live versions through both watches: a merged kubelet event whose count climbs to 5,
        # an events.k8s.io-native one (series, no deprecated fields), a kubelet event that
        # has both firstTimestamp and eventTime, and a scheduler event known only by
        # reportingComponent.
        web = api.add(k8s_event("web-1", reason="BackOff",
                                message="Back-off restarting failed container"))
        for _ in range(4):
            api.bump_count(web["metadata"]["uid"])
        api.add(events_v1_event("node-7"))
        both_times = k8s_event("job-3", reason="Pulled", message="Pulled image busybox")
        both_times["eventTime"] = "2026-11-23T09:00:00.000000Z"
        both_times["source"]["host"] = "node-3"
        api.add(both_times)
        scheduled = k8s_event("api-2", reason="Scheduled", message="Successfully assigned")
        scheduled.update(source={}, reportingComponent="default-scheduler", type="Normal")
        api.add(scheduled)
        total = listed + 8
        for pipeline in (core, v1):
            await wait_until(partial(settled, pipeline, total), within=30,
                             what=f"{total} versions delivered by every receiver")
        core_series, v1_series = series(core), series(v1)
        core_sent, v1_sent = sent(core), sent(v1)

    for name in RULES:
        core_lines = read_lines(tmp_path / "core" / f"{name}.jsonl")
        v1_lines = read_lines(tmp_path / "events.k8s.io" / f"{name}.jsonl")
        # Each rule selects some versions and not all, so a field read differently would show.
        assert 0 < len(core_lines) < total or name == "everything", f"{name}: {len(core_lines)}"
        assert core_lines == v1_lines, f"{name}: events.k8s.io differs from core"
    assert len(read_lines(tmp_path / "core" / "everything.jsonl")) == total
    assert core_sent == v1_sent
    assert core_series == v1_series
    assert core_series[("default", "Pod", "web-1", "BackOff", "Warning")] == 5
    assert core_series[("default", "Node", "node-7", "NodeNotReady", "Warning")] == 4

    # The named fields render as in core/v1 for the events.k8s.io object too.
    rendered = {line["version"].split("/")[0]: line
                for line in read_lines(tmp_path / "events.k8s.io" / "everything.jsonl")}
    assert rendered[web["metadata"]["uid"]]["line"] == (
        "web-1 Back-off restarting failed container 5 kubelet")
    by_count = read_lines(tmp_path / "events.k8s.io" / "by-count.jsonl")
    assert {line["line"] for line in by_count} >= {
        f"web-1 Back-off restarting failed container {n} kubelet" for n in (3, 4, 5)}
    assert any(line["line"].startswith("node-7 ") for line in by_count)  # series.count 4
    times = {line["line"].split()[0]: line["time"] for line in rendered.values()}
    assert times["job-3"] == "2026-11-23T10:00:00.000Z"  # firstTimestamp before eventTime
    scheduler = read_lines(tmp_path / "events.k8s.io" / "by-scheduler.jsonl")
    assert any(line["reporting"] == "default-scheduler" for line in scheduler)

    # Without a layout each run writes the object as its API served it.
    core_raw = read_lines(tmp_path / "core" / "raw.jsonl")
    v1_raw = read_lines(tmp_path / "events.k8s.io" / "raw.jsonl")
    assert [e["metadata"]["uid"] for e in core_raw] == [e["metadata"]["uid"] for e in v1_raw]
    assert {e["apiVersion"] for e in core_raw} == {"v1"}
    assert {e["apiVersion"] for e in v1_raw} == {"events.k8s.io/v1"}
    assert all("involvedObject" not in e and "regarding" in e for e in v1_raw)
    node = next(e for e in v1_raw if e["regarding"].get("name") == "node-7")
    assert node["note"].startswith("Node node-7") and "deprecatedCount" not in node
