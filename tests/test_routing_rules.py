"""Rule matching, ported from resmo's pkg/exporter/rule_test.go, plus the API fallbacks."""

from __future__ import annotations

from typing import Any

import pytest

from eventpipe.config import ConfigError, RouteConfig, RuleConfig
from eventpipe.routing import compile_route


def event(
    *,
    namespace: str = "",
    type: str = "",
    reason: str = "",
    message: str = "",
    kind: str = "",
    api_version: str = "",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    count: int | None = None,
    component: str = "",
    host: str = "",
) -> dict[str, Any]:
    """A core/v1 Event dict with the fields resmo's EnhancedEvent tests set."""
    involved: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    if labels is not None:
        involved["labels"] = labels
    if annotations is not None:
        involved["annotations"] = annotations
    ev: dict[str, Any] = {
        "metadata": {"namespace": namespace},
        "type": type,
        "reason": reason,
        "message": message,
        "involvedObject": involved,
        "source": {"component": component, "host": host},
    }
    if count is not None:
        ev["count"] = count
    return ev


def matches(rule: dict[str, Any], ev: dict[str, Any]) -> bool:
    """Whether `rule` matches `ev`, observed through a one-rule route."""
    router = compile_route(RouteConfig(match=[RuleConfig(**rule, receiver="r")]))
    return "r" in router.receivers_for(ev)


def test_empty_rule() -> None:
    assert matches({}, event())


def test_basic_rule() -> None:
    assert matches({"namespace": "kube-system"}, event(namespace="kube-system"))


def test_basic_no_match_rule() -> None:
    assert not matches({"namespace": "kube-system"}, event(namespace="default"))


def test_basic_regex_rule() -> None:
    rule = {"namespace": "kube-*"}
    assert matches(rule, event(namespace="kube-system"))
    assert matches(rule, event(namespace="kube-public"))
    assert not matches(rule, event(namespace="default"))


def test_label_regex_rule() -> None:
    assert matches({"labels": {"version": "alpha"}}, event(labels={"version": "alpha-123"}))


def test_one_label_matches_rule() -> None:
    assert matches({"labels": {"env": "prod"}}, event(labels={"env": "prod"}))


def test_one_label_does_not_match_rule() -> None:
    assert not matches({"labels": {"env": "prod"}}, event(labels={"env": "lab"}))


def test_two_label_matches_rule() -> None:
    labels = {"env": "prod", "version": "beta"}
    assert matches({"labels": labels}, event(labels=dict(labels)))


def test_two_label_required_rule() -> None:
    rule = {"labels": {"env": "prod", "version": "beta"}}
    assert not matches(rule, event(labels={"env": "prod", "version": "alpha"}))


def test_two_label_required_one_missing_rule() -> None:
    rule = {"labels": {"env": "prod", "version": "beta"}}
    assert not matches(rule, event(labels={"age": "very-old", "version": "beta"}))


def test_one_annotation_matches_rule() -> None:
    ev = event(annotations={"name": "source", "service": "event-exporter"})
    assert matches({"annotations": {"name": "sou*"}}, ev)


def test_one_annotation_does_not_match_rule() -> None:
    assert not matches({"annotations": {"name": "test*"}}, event(annotations={"name": "source"}))


def test_two_annotations_matches_rule() -> None:
    ev = event(annotations={"name": "source", "service": "event-exporter"})
    assert matches({"annotations": {"name": "sou.*", "service": "event*"}}, ev)


def test_two_annotations_required_one_missing_rule() -> None:
    ev = event(annotations={"service": "event-exporter"})
    assert not matches({"annotations": {"name": "sou*", "service": "event*"}}, ev)


def test_complex_rule_no_match() -> None:
    ev = event(labels={"env": "prod", "version": "alpha"})
    rule = {"namespace": "kube-system", "type": "Warning",
            "labels": {"env": "prod", "version": "alpha"}}
    assert not matches(rule, ev)


def test_complex_rule_matches() -> None:
    ev = event(namespace="kube-system", kind="Pod", labels={"env": "prod", "version": "alpha"},
               annotations={"service": "event-exporter"})
    rule = {"namespace": "kube-system", "kind": "Pod",
            "labels": {"env": "prod", "version": "alpha"}, "annotations": {"service": "event*"}}
    assert matches(rule, ev)


def test_complex_rule_annotations_no_match() -> None:
    ev = event(namespace="kube-system", kind="Pod", labels={"env": "prod", "version": "alpha"},
               annotations={"service": "event*"})
    rule = {"namespace": "kube-system", "kind": "Pod",
            "labels": {"env": "prod", "version": "alpha"}, "annotations": {"name": "test*"}}
    assert not matches(rule, ev)


def test_complex_rule_matches_regexp() -> None:
    ev = event(namespace="kube-system", kind="Pod", labels={"env": "prod", "version": "alpha"})
    rule = {"namespace": "kube*", "kind": "Po*",
            "labels": {"env": "prod", "version": "alpha|beta"}}
    assert matches(rule, ev)


def test_complex_rule_no_match_regexp() -> None:
    ev = event(namespace="kube-system", type="Pod", labels={"env": "prod", "version": "alpha"})
    rule = {"namespace": "kube*", "type": "Deployment|ReplicaSet",
            "labels": {"env": "prod", "version": "alpha|beta"}}
    assert not matches(rule, ev)


def test_message_regexp() -> None:
    ev = event(namespace="default", type="Pod", message='Successfully pulled image "nginx:latest"')
    assert matches({"type": "Pod", "message": "pulled.*nginx.*"}, ev)


def test_count() -> None:
    ev = event(namespace="default", type="Pod", message='Successfully pulled image "nginx:latest"',
               count=5)
    assert not matches({"type": "Pod", "message": "pulled.*nginx.*", "minCount": 30}, ev)
    assert matches({"type": "Pod", "message": "pulled.*nginx.*", "minCount": 5}, ev)


# --- beyond resmo's tests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "ev"),
    [
        ("apiVersion", "^apps/", event(api_version="apps/v1")),
        ("kind", "^Deployment$", event(kind="Deployment")),
        ("reason", "BackOff", event(reason="BackOff")),
        ("component", "kubelet", event(component="kubelet")),
        ("host", "node-1", event(host="ip-10-0-0-1.node-1")),
    ],
)
def test_each_scalar_field(field: str, value: str, ev: dict[str, Any]) -> None:
    assert matches({field: value}, ev)
    assert not matches({field: "nomatch"}, ev)


def test_unanchored_like_go_match_string() -> None:
    assert matches({"reason": "Back"}, event(reason="BackOff"))
    assert matches({"reason": "Off"}, event(reason="BackOff"))
    assert not matches({"reason": "^Off"}, event(reason="BackOff"))


def test_label_key_must_exist_even_for_match_all_regex() -> None:
    assert not matches({"labels": {"team": ".*"}}, event(labels={}))
    assert not matches({"labels": {"team": ".*"}}, event())
    assert matches({"labels": {"team": ".*"}}, event(labels={"team": ""}))


def test_missing_count_is_one() -> None:
    assert matches({"minCount": 1}, event())
    assert not matches({"minCount": 2}, event())


def test_events_k8s_io_fallbacks() -> None:
    ev = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"namespace": "test-530513"},
        "note": "Successfully assigned test-530513/some-pod",
        "reason": "Scheduled",
        "type": "Normal",
        "regarding": {"apiVersion": "v1", "kind": "Pod", "labels": {"app": "web"}},
        "deprecatedSource": {"component": "default-scheduler", "host": "node-a"},
        "reportingController": "scheduler-controller",
        "series": {"count": 7},
        "deprecatedCount": 1,
    }
    rule = {"namespace": "^test-", "message": "assigned", "kind": "^Pod$", "apiVersion": "^v1$",
            "component": "^default-scheduler$", "host": "node-a", "labels": {"app": "web"},
            "minCount": 7}
    assert matches(rule, ev)
    assert not matches({"minCount": 8}, ev)
    del ev["series"]
    assert matches({"minCount": 1}, ev) and not matches({"minCount": 2}, ev)
    del ev["deprecatedSource"]
    assert matches({"component": "^scheduler-controller$"}, ev)


def test_core_reporting_component_used_when_source_is_empty() -> None:
    ev = event(reason="FailedScheduling")
    ev["source"] = {}
    ev["reportingComponent"] = "default-scheduler"
    assert matches({"component": "default-scheduler"}, ev)


def test_null_fields_read_as_empty() -> None:
    ev = {"metadata": {"namespace": None}, "reason": None, "involvedObject": None, "count": None}
    assert matches({"namespace": "^$", "reason": "^$", "kind": "^$"}, ev)
    assert not matches({"labels": {"a": ""}}, ev)


def test_bad_regex_is_config_error_naming_rule_field_and_pattern() -> None:
    # model_construct skips validation: compile_route must still refuse the pattern.
    rule = RuleConfig.model_construct(**{**RuleConfig().model_dump(), "reason": "(unclosed"})
    route = RouteConfig.model_construct(drop=[], match=[], routes=[
        RouteConfig.model_construct(drop=[rule], match=[], routes=[])])
    with pytest.raises(ConfigError) as info:
        compile_route(route)
    message = str(info.value)
    assert "route.routes[0].drop[0].reason" in message
    assert "'(unclosed'" in message
