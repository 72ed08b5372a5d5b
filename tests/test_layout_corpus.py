"""Layouts against every real Event in the corpus (tests/corpus), and resmo's documented
example layouts."""

from __future__ import annotations

import re

import orjson
import pytest

from eventpipe.layout import compile_layout
from tests.corpus_files import CORPUS

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _load() -> list[tuple[str, dict[str, object]]]:
    events = []
    for path in sorted([*CORPUS.glob("*.jsonl"), *CORPUS.glob("kindless/*.jsonl")]):
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                obj = orjson.loads(line)
                if path.name.endswith(".watch.jsonl"):
                    obj = obj["object"]  # watch wrapper: {"type": ..., "object": Event}
                events.append((f"{path.name}:{n}", obj))
    return events


EVENTS = _load()

SIX_FIELDS = {
    "kind": "{{ .InvolvedObject.Kind }}",
    "name": "{{ .InvolvedObject.Namespace }}/{{ .InvolvedObject.Name }}",
    "reason": "{{ .Reason }}",
    "message": "{{ .Message }}",
    "count": "{{ .Count }}",
    "createdAt": "{{ .GetTimestampISO8601 }}",
}

# From resmoio/kubernetes-event-exporter README.md and pkg/sinks/tmpl_test.go.
RESMO_EXAMPLES: dict[str, object] = {
    "kafka": {
        "kind": "{{ .InvolvedObject.Kind }}",
        "namespace": "{{ .InvolvedObject.Namespace }}",
        "name": "{{ .InvolvedObject.Name }}",
        "reason": "{{ .Reason }}",
        "message": "{{ .Message }}",
        "type": "{{ .Type }}",
        "createdAt": "{{ .GetTimestampISO8601 }}",
    },
    "kinesis-customizing-payload": {
        "region": "us-west-2",
        "eventType": "kubernetes-event",
        "createdAt": "{{ .GetTimestampMs }}",
        "details": {
            "message": "{{ .Message }}",
            "reason": "{{ .Reason }}",
            "type": "{{ .Type }}",
            "count": "{{ .Count }}",
            "kind": "{{ .InvolvedObject.Kind }}",
            "name": "{{ .InvolvedObject.Name }}",
            "namespace": "{{ .Namespace }}",
            "component": "{{ .Source.Component }}",
            "host": "{{ .Source.Host }}",
            "labels": "{{ toJson .InvolvedObject.Labels}}",
        },
    },
    "opsgenie": {
        "message": "Event {{ .Reason }} for {{ .InvolvedObject.Namespace }}/"
        "{{ .InvolvedObject.Name }} on K8s cluster",
        "alias": "{{ .UID }}",
        "description": "<pre>{{ toPrettyJson . }}</pre>",
        "tags": [
            "event",
            "{{ .Reason }}",
            "{{ .InvolvedObject.Kind }}",
            "{{ .InvolvedObject.Name }}",
        ],
    },
    "slack": {
        "channel": "@{{ .InvolvedObject.Labels.owner }}",
        "message": "{{ .Message }}",
        "fields": {"namespace": "{{ .Namespace }}", "reason": "{{ .Reason }}"},
    },
    "opensearch-index": "kube-events-{{ .InvolvedObject.Namespace }}-{2006-01-02}",
    "tmpl-test": {
        "details": {
            "message": "{{ .Message }}",
            "kind": "{{ .InvolvedObject.Kind }}",
            "name": "{{ .InvolvedObject.Name }}",
            "namespace": "{{ .Namespace }}",
            "type": "{{ .Type }}",
            "tags": ["sre", "ops"],
        },
        "eventType": "kube-event",
        "region": "us-west-2",
        "createdAt": "{{ .GetTimestampMs }}",
    },
}


def test_corpus_is_there() -> None:
    assert len(EVENTS) > 6000
    assert any(e.get("apiVersion") == "events.k8s.io/v1" for _, e in EVENTS)


def test_to_json_renders_every_event_back_exactly() -> None:
    layout = compile_layout("{{ toJson . }}")
    for where, event in EVENTS:
        out = layout.render_json(event)
        back = orjson.loads(out)
        assert back == event, where
        assert list(back) == list(event), where  # key order kept


def test_six_field_layout_renders_every_event() -> None:
    layout = compile_layout(SIX_FIELDS)
    null_first = 0
    for where, event in EVENTS:
        rendered = layout.render(event)
        assert isinstance(rendered, dict)
        assert ISO.match(rendered["createdAt"]), where
        assert rendered["createdAt"] != "0001-01-01T00:00:00.000Z", where
        assert rendered["reason"] == (event.get("reason") or ""), where
        message = event.get("message", event.get("note"))
        assert rendered["message"] == (message or ""), where
        involved = event.get("involvedObject", event.get("regarding"))
        assert isinstance(involved, dict), where
        assert rendered["kind"] == involved.get("kind", ""), where
        count = event.get("count", event.get("deprecatedCount"))
        assert rendered["count"] == ("" if count is None else str(count)), where
        orjson.loads(layout.render_json(event))
        null_first += event.get("firstTimestamp", "x") is None
    assert null_first > 400  # the null-timestamp events were really exercised


@pytest.mark.parametrize("name", sorted(RESMO_EXAMPLES))
def test_resmo_example_layouts_render_on_the_corpus(name: str) -> None:
    layout = compile_layout(RESMO_EXAMPLES[name], where=f"examples.{name}")
    for _where, event in EVENTS[::25]:
        layout.render_json(event)


def test_resmo_examples_render_sensibly() -> None:
    # A kubelet BackOff seen 6,281 times: firstTimestamp (what the timestamp functions use) is a
    # day before lastTimestamp and creationTimestamp, and involvedObject has no labels.
    where, event = next((w, e) for w, e in EVENTS if w.startswith("11_nuvoloso"))
    kinesis = compile_layout(RESMO_EXAMPLES["kinesis-customizing-payload"]).render(event)
    assert kinesis == {
        "region": "us-west-2",
        "eventType": "kubernetes-event",
        "createdAt": "1543364602000",
        "details": {
            "message": "Back-off restarting failed container",
            "reason": "BackOff",
            "type": "Warning",
            "count": "6281",
            "kind": "Pod",
            "name": "nuvoloso-node-6np84",
            "namespace": "testNamespace",
            "component": "kubelet",
            "host": "ip-172-20-49-82.us-west-2.compute.internal",
            "labels": "null",
        },
    }, where
    opsgenie = compile_layout(RESMO_EXAMPLES["opsgenie"]).render(event)
    assert isinstance(opsgenie, dict)
    assert opsgenie["message"] == (
        "Event BackOff for testNamespace/nuvoloso-node-6np84 on K8s cluster")
    assert opsgenie["alias"] == "21ebf374-f363-11e8-bee0-023793e6aaa4"
    assert orjson.loads(opsgenie["description"][5:-6]) == event
    assert opsgenie["tags"] == ["event", "BackOff", "Pod", "nuvoloso-node-6np84"]
    index = compile_layout(RESMO_EXAMPLES["opensearch-index"]).render(event)
    assert index == "kube-events-testNamespace-{2006-01-02}"
    kafka = compile_layout(RESMO_EXAMPLES["kafka"]).render(event)
    assert isinstance(kafka, dict)
    assert kafka["createdAt"] == "2018-11-28T00:23:22.000Z"
    slack = compile_layout(RESMO_EXAMPLES["slack"]).render(
        dict(event, involvedObject=dict(event["involvedObject"], labels={"owner": "ana"}))  # type: ignore[call-overload]
    )
    assert isinstance(slack, dict)
    assert slack["channel"] == "@ana"
