"""examples/grafana/eventpipe-dashboard.json is a valid dashboard whose queries read what
eventpipe really writes: the Loki queries' stream labels are the loki receiver's default labels
and their `| json` fields are keys of its default line (the community dashboard's
metadata_namespace, involvedObject_kind, involvedObject_name, reason, message, type among
them), and the Prometheus queries parse (promtool) and name metrics eventpipe exports. The
chart's `grafanaDashboard` option ships the same file in a ConfigMap for Grafana's sidecar."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from eventpipe.metrics import Metrics
from eventpipe.sinks.loki.config import LokiSinkConfig
from eventpipe.sinks.loki.sink import build_sink
from tests.corpus_files import corpus_files
from tests.pipeline_harness import REPO
from tests.test_chart import CHART, helm, promtool_check

DASHBOARD = REPO / "examples" / "grafana" / "eventpipe-dashboard.json"
COMMUNITY_FIELDS = {"metadata_namespace", "involvedObject_kind", "involvedObject_name",
                    "reason", "message", "type"}
"""What the kubernetes-event-exporter community dashboard reads after `| json`."""


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def targets(kind: str) -> list[str]:
    """The expressions of every target on a datasource of `kind` (loki / prometheus)."""
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])
            if t["datasource"]["type"] == kind]


def flattened(value: Any, prefix: str = "") -> set[str]:
    """The label names LogQL's `| json` makes of a JSON line (nested keys joined by `_`)."""
    if not isinstance(value, dict):
        return {prefix}
    names: set[str] = set()
    for key, item in value.items():
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_{key}" if prefix else key)
        names |= flattened(item, name)
    return names


def default_loki_entries() -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(stream labels, parsed line) of the corpus's core/v1 Events (what the default
    `watch.apiGroup` serves) through a default loki receiver."""
    sink = build_sink(LokiSinkConfig.model_validate(
        {"url": "http://loki:3100/loki/api/v1/push", "streamLabels": {"app": "event-exporter"}}),
        name="loki", cluster_name="")
    out = []
    bodies = [line for path in corpus_files() for line in path.read_bytes().splitlines()
              if line.strip() and orjson.loads(line).get("apiVersion") == "v1"]
    assert len(bodies) > 100
    for body in bodies:
        entry = sink.encode(orjson.loads(body), body)
        out.append((orjson.loads(entry.labels), orjson.loads(orjson.loads(entry.line))))
    return out


def test_dashboard_is_valid_and_its_datasources_are_variables() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            kind = target["datasource"]["type"]
            assert target["datasource"]["uid"] == f"${{{kind}}}"
            assert variables[kind]["type"] == "datasource" and variables[kind]["query"] == kind
            assert target["expr"].strip()
    titles = " ".join(p["title"] for p in board["panels"])
    for what in ("by type", "by reason", "by namespace", "Latest Warnings", "one object",
                 "lag", "failures", "Dead letters", "Spool"):
        assert what in titles


def test_loki_queries_read_the_default_line_and_labels() -> None:
    entries = default_loki_entries()
    fields = set.union(*(flattened(line) for _, line in entries))
    assert fields >= COMMUNITY_FIELDS
    # Most lines have them all (an Event may leave out a field; it then is absent in the API).
    complete = [line for _, line in entries if flattened(line) >= COMMUNITY_FIELDS]
    assert len(complete) > 0.8 * len(entries)
    labels = set.union(*(set(stream) for stream, _ in entries))  # empty values are left out
    assert {"app", "namespace", "type", "reason", "kind"} <= labels
    queries = targets("loki")
    variables = [v for v in dashboard()["templating"]["list"] if v.get("type") == "query"
                 and v["datasource"]["type"] == "loki"]
    for query in queries:
        selector, _, pipeline = query.partition("}")
        used = set(re.findall(r"(\w+)\s*=~?\s*\"", selector)) | set(re.findall(
            r"by \((\w+)\)", pipeline))
        assert used <= labels, query
        if "| json" in pipeline:
            read = set(re.findall(r"\{\{\s*\.(\w+)", pipeline)) | set(re.findall(
                r"\|\s*(\w+)\s*=~?", pipeline))
            assert read <= fields | labels, (query, read - fields - labels)
    assert any("type=\"Warning\"" in q and "line_format" in q for q in queries)
    assert {v["query"]["label"] for v in variables} <= labels


def test_prometheus_queries_parse_and_name_exported_metrics(tmp_path: Path) -> None:
    families = list(Metrics().registry.collect())
    exported = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    queries = targets("prometheus")
    for query in queries:
        for name in re.findall(r"\b(eventpipe_\w+)", query):
            assert name in exported, f"{name} in {query!r} is not exported"
    rules = [{"alert": f"Q{i}", "expr": q.replace("$job", ".*")} for i, q in enumerate(queries)]
    promtool_check([{"name": "dashboard", "rules": rules}], tmp_path / "rules.yaml")


def test_chart_ships_the_dashboard_for_the_grafana_sidecar() -> None:
    assert (CHART / "files" / "grafana-dashboard.json").read_text() == DASHBOARD.read_text(), (
        "charts/eventpipe/files/grafana-dashboard.json differs from the example: copy it over")
    docs = [d for d in yaml.safe_load_all(helm(
        "template", "rel", str(CHART), "--set", "grafanaDashboard.enabled=true",
        "--set", "grafanaDashboard.namespace=grafana")) if d]
    (board,) = [d for d in docs if d["kind"] == "ConfigMap"
                and d["metadata"]["name"].endswith("-dashboard")]
    assert board["metadata"]["namespace"] == "grafana"
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["eventpipe-dashboard.json"]) == dashboard()
    off = [d for d in yaml.safe_load_all(helm("template", "rel", str(CHART))) if d]
    assert not [d for d in off if d["metadata"]["name"].endswith("-dashboard")]


def test_community_dashboard_query_fields_exist() -> None:
    """The community dashboard's panel query reads fields the default line has."""
    community = ('{app="kubernetes-event-exporter"} | json | line_format "[{{.metadata_namespace}}]'
                 ' [{{.involvedObject_kind}}] \\"{{.involvedObject_name}}\\" [{{.reason}}] '
                 '{{.message}}" | type=~"Normal"')
    read = set(re.findall(r"\{\{\.(\w+)\}\}", community)) | {"type"}
    _, line = default_loki_entries()[0]
    assert read <= flattened(line)
