"""Route tree semantics, ported from resmo's pkg/exporter/route_test.go, and the Router API.

The last tests run real Events from the corpus (tests/corpus) through several route trees and
compare the compiled router with a direct, unoptimised transcription of resmo's ProcessEvent.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from eventpipe.config import RouteConfig, RuleConfig, load_config_text
from eventpipe.routing import compile_route
from tests.corpus_files import CORPUS


def route(spec: dict[str, Any]) -> RouteConfig:
    return RouteConfig.model_validate(spec)


def ns_event(namespace: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace}, **extra}


def test_empty_route() -> None:
    router = compile_route(route({}))
    assert router.receivers_for(ns_event("")) == frozenset()
    assert router.receivers == frozenset()


def test_basic_route() -> None:
    router = compile_route(route({"match": [{"namespace": "kube-system", "receiver": "osman"}]}))
    assert router.receivers_for(ns_event("kube-system")) == {"osman"}


def test_drop_rule() -> None:
    router = compile_route(route({"drop": [{"namespace": "kube-system"}],
                                  "match": [{"receiver": "osman"}]}))
    assert router.receivers_for(ns_event("kube-system")) == frozenset()
    assert router.receivers_for(ns_event("default")) == {"osman"}


def test_single_level_multiple_match_route() -> None:
    router = compile_route(route({"match": [{"namespace": "kube-system", "receiver": "osman"},
                                            {"receiver": "any"}]}))
    assert router.receivers_for(ns_event("kube-system")) == {"osman", "any"}


def test_sub_route() -> None:
    router = compile_route(route({"match": [{"namespace": "kube-system"}],
                                  "routes": [{"match": [{"receiver": "osman"}]}]}))
    assert router.receivers_for(ns_event("kube-system")) == {"osman"}
    assert router.receivers_for(ns_event("default")) == frozenset()


def test_sub_sub_route() -> None:
    router = compile_route(route({
        "match": [{"namespace": "kube-*"}],
        "routes": [{"match": [{"receiver": "osman"}],
                    "routes": [{"match": [{"receiver": "any"}]}]}],
    }))
    assert router.receivers_for(ns_event("kube-system")) == {"osman", "any"}


def test_sub_sub_route_with_drop() -> None:
    router = compile_route(route({
        "match": [{"namespace": "kube-*"}],
        "routes": [{"match": [{"receiver": "osman"}],
                    "routes": [{"drop": [{"namespace": "kube-system"}],
                                "match": [{"receiver": "any"}]}]}],
    }))
    assert router.receivers_for(ns_event("kube-system")) == {"osman"}


def test_gh_issue_51() -> None:
    router = compile_route(route({"drop": [{"type": "Normal"}],
                                  "match": [{"reason": "FailedCreatePodContainer",
                                             "receiver": "elastic"}]}))
    ev1 = {"type": "Warning", "reason": "FailedCreatePodContainer"}
    ev2 = {"type": "Warning", "reason": "FailedCreate"}
    assert router.receivers_for(ev1) == {"elastic"}
    assert router.receivers_for(ev2) == frozenset()


def test_partial_match_sends_matching_rules_but_skips_sub_routes() -> None:
    router = compile_route(route({
        "match": [{"reason": "BackOff", "receiver": "a"}, {"type": "Warning", "receiver": "b"}],
        "routes": [{"match": [{"receiver": "c"}]}],
    }))
    assert router.receivers_for({"reason": "BackOff", "type": "Normal"}) == {"a"}
    assert router.receivers_for({"reason": "BackOff", "type": "Warning"}) == {"a", "b", "c"}
    assert router.receivers_for({"reason": "Pulled", "type": "Normal"}) == frozenset()


def test_drop_in_sibling_does_not_affect_other_routes() -> None:
    router = compile_route(route({"routes": [
        {"match": [{"receiver": "dump"}]},
        {"drop": [{"type": "Normal"}], "match": [{"receiver": "alerts"}]},
    ]}))
    assert router.receivers_for({"type": "Normal"}) == {"dump"}
    assert router.receivers_for({"type": "Warning"}) == {"dump", "alerts"}


def test_drop_rule_receiver_is_ignored() -> None:
    router = compile_route(route({"drop": [{"type": "Normal", "receiver": "x"}],
                                  "match": [{"receiver": "y"}]}))
    assert router.receivers_for({"type": "Normal"}) == frozenset()
    assert router.receivers == {"y"}


def test_static_router_skips_the_event() -> None:
    router = compile_route(route({"routes": [{"match": [{"receiver": "dump"}]},
                                             {"match": [{"receiver": "file"}, {}]}]}))
    assert router.needs_event is False
    assert router.static_receivers == {"dump", "file"}
    assert router.receivers == {"dump", "file"}
    assert router.receivers_for({}) is router.static_receivers


def test_unconditional_drop_makes_subtree_unreachable() -> None:
    router = compile_route(route({"routes": [{"match": [{"receiver": "a"}]},
                                             {"drop": [{}], "match": [{"receiver": "b"}],
                                              "routes": [{"match": [{"receiver": "c"}]}]}]}))
    assert router.needs_event is False
    assert router.static_receivers == {"a"}
    assert router.receivers == {"a"}


def test_conditional_router_reports_needs_event_and_reachable() -> None:
    router = compile_route(route({"routes": [{"match": [{"receiver": "a"}]},
                                             {"match": [{"minCount": 2, "receiver": "b"}]}]}))
    assert router.needs_event is True
    assert router.receivers == {"a", "b"}
    assert router.receivers_for({"count": 3}) == {"a", "b"}
    assert router.receivers_for({}) == {"a"}


def test_equal_results_reuse_one_frozenset() -> None:
    router = compile_route(route({"match": [{"reason": "A|B", "receiver": "x"}]}))
    first = router.receivers_for({"reason": "A"})
    assert router.receivers_for({"reason": "B"}) is first
    assert router.receivers_for({"reason": "C"}) is router.receivers_for({"reason": "D"})


# --- real events against a transcription of resmo's ProcessEvent ---------------------------


def _get(ev: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(ev, dict):
            return None
        ev = ev.get(key)  # type: ignore[assignment]
    return ev


def _reference_fields(ev: dict[str, Any]) -> dict[str, Any]:
    involved = ev.get("involvedObject") or ev.get("regarding") or {}
    count = _get(ev, "series", "count")
    if not isinstance(count, int):
        count = ev.get("count") if isinstance(ev.get("count"), int) else ev.get("deprecatedCount")
    return {
        "message": ev.get("message") if ev.get("message") is not None else ev.get("note"),
        "api_version": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "namespace": _get(ev, "metadata", "namespace"),
        "reason": ev.get("reason"),
        "type": ev.get("type"),
        "component": _get(ev, "source", "component")
        or _get(ev, "deprecatedSource", "component")
        or ev.get("reportingController") or ev.get("reportingComponent"),
        "host": _get(ev, "source", "host") or _get(ev, "deprecatedSource", "host"),
        "labels": involved.get("labels") or {},
        "annotations": involved.get("annotations") or {},
        "count": count if isinstance(count, int) else 1,
    }


def _reference_rule(rule: RuleConfig, f: dict[str, Any]) -> bool:
    for name in ("message", "api_version", "kind", "namespace", "reason", "type", "component",
                 "host"):
        pattern = getattr(rule, name)
        if pattern and not re.search(pattern, f[name] or ""):
            return False
    for name in ("labels", "annotations"):
        for key, pattern in getattr(rule, name).items():
            if key not in f[name] or not re.search(pattern, f[name][key]):
                return False
    return bool(f["count"] >= rule.min_count)


def _reference(r: RouteConfig, f: dict[str, Any], out: set[str]) -> None:
    if any(_reference_rule(rule, f) for rule in r.drop):
        return
    matches_all = True
    for rule in r.match:
        if _reference_rule(rule, f):
            if rule.receiver:
                out.add(rule.receiver)
        else:
            matches_all = False
    if matches_all:
        for sub in r.routes:
            _reference(sub, f, out)


TREES = [
    """
routes:
  - match: [{receiver: dump}]
  - drop: [{namespace: "test"}, {type: "Normal"}]
    match: [{receiver: critical}]
  - match:
      - kind: "Pod|Deployment|ReplicaSet"
        labels: {version: "dev"}
        receiver: slack
""",
    """
drop: [{reason: "^(Pulled|Created|Started)$"}]
match: [{type: Warning, receiver: warn}, {minCount: 10, receiver: noisy}]
routes:
  - match: [{namespace: "^openshift-", receiver: platform}]
    routes:
      - drop: [{component: "kubelet"}]
        match: [{kind: "^Cluster", receiver: cluster-objects}]
  - match: [{message: "(?i)failed|error", apiVersion: "^v1$", receiver: failures}]
""",
    """
match:
  - host: "ip-10|node"
    receiver: by-host
routes:
  - match: [{minCount: 2, receiver: repeated}, {reason: "BackOff", receiver: backoff}]
  - match:
      - annotations: {"deployment.kubernetes.io/revision": "."}
        receiver: annotated
""",
]


def _corpus() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        if path.name.endswith(".watch.jsonl"):
            continue
        events.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return events


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    events = _corpus()
    assert len(events) > 5000
    # Let label/annotation rules see something: tag a deterministic subset like enrichment would.
    for i, ev in enumerate(events):
        involved = ev.get("involvedObject") or ev.get("regarding")
        if isinstance(involved, dict) and i % 3 == 0:
            involved["labels"] = {"version": "dev" if i % 2 else "prod"}
        if isinstance(involved, dict) and i % 5 == 0:
            involved["annotations"] = {"deployment.kubernetes.io/revision": str(i % 4)}
    return events


@pytest.mark.parametrize("tree", TREES)
def test_compiled_router_agrees_with_reference_on_corpus(
    tree: str, corpus: list[dict[str, Any]]
) -> None:
    route_config = load_config_text(
        "route:\n" + "".join(f"  {line}\n" for line in tree.strip().splitlines())
        + "receivers:\n" + "".join(
            f"  - {{name: {n}, stdout: {{}}}}\n"
            for n in ["dump", "critical", "slack", "warn", "noisy", "platform",
                      "cluster-objects", "failures", "annotated", "by-host", "repeated",
                      "backoff"])
    ).route
    router = compile_route(route_config)
    outcomes: set[frozenset[str]] = set()
    for ev in corpus:
        expected: set[str] = set()
        _reference(route_config, _reference_fields(ev), expected)
        got = router.receivers_for(ev)
        assert got == expected, ev["metadata"].get("name")
        outcomes.add(got)
    # The trees are only a meaningful check if events take several different paths.
    assert len(outcomes) >= 3


def test_every_combination_of_two_level_tree() -> None:
    """Exhaustive small case: 2 match rules x 2 drop rules x sub-route, all 32 event shapes."""
    router = compile_route(route({
        "drop": [{"reason": "^D1$"}, {"type": "^D2$"}],
        "match": [{"kind": "^K1$", "receiver": "k1"}, {"namespace": "^N1$", "receiver": "n1"}],
        "routes": [{"match": [{"receiver": "sub"}]}],
    }))
    for d1, d2, k1, n1, extra in itertools.product([False, True], repeat=5):
        ev = {"reason": "D1" if d1 else "x", "type": "D2" if d2 else "x",
              "involvedObject": {"kind": "K1" if k1 else "x"},
              "metadata": {"namespace": "N1" if n1 else "x"}, "message": str(extra)}
        want: set[str] = set()
        if not (d1 or d2):
            want |= {"k1"} if k1 else set()
            want |= {"n1"} if n1 else set()
            if k1 and n1:
                want.add("sub")
        assert router.receivers_for(ev) == want
