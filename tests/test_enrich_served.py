"""Enrichment spliced into the served bytes without parsing the Event (eventpipe.enrich.served)
writes exactly the bytes the parsed path writes: for every Event of the corpus, for references
of every shape (fieldPaths with braces and quotes, served keys, spaces, `regarding`, the key
twice), for tombstones and for objects the caches do not hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from eventpipe.delivery.delivery import Delivery
from eventpipe.delivery.settings import DeliverySettings
from eventpipe.enrich import EnrichConfig, Enricher, EnrichSettings, InformerSettings
from eventpipe.enrich.apply import ObjectInfo
from eventpipe.enrich.caches import MetadataCaches
from eventpipe.enrich.served import served_reference
from eventpipe.metrics import Metrics
from eventpipe.sinks.encoding import LineEncoder
from eventpipe.sinks.file.config import FileSinkConfig
from eventpipe.sinks.file.sink import build_sink
from eventpipe.spool.rows import StoredRow
from tests.corpus_files import corpus_files

Obj = dict[str, Any]
CACHE_RV = "1000000"


def synced_enricher() -> Enricher:
    """An enricher whose metadata caches have listed (no API: the store is filled by the test)."""
    registry = CollectorRegistry()
    caches = MetadataCaches(None, EnrichConfig.model_validate({}),  # type: ignore[arg-type]
                            namespaces=[""], settings=InformerSettings(), registry=registry)
    for informer in caches.informers:
        informer.synced.set()
        informer._advance(CACHE_RV)
    return Enricher(None, settings=EnrichSettings(deadline=0.01), registry=registry,  # type: ignore[arg-type]
                    caches=caches)


def cache(enricher: Enricher, ref: Obj, n: int, *, deleted: bool = False) -> None:
    """The object `ref` names, owned by a ReplicaSet of a Deployment when it is a Pod."""
    assert enricher.caches is not None
    store = enricher.caches.store
    kind, namespace, uid = str(ref["kind"]), str(ref.get("namespace") or ""), str(ref["uid"])
    owners = None
    if kind == "Pod":
        store.upsert(ObjectInfo(uid=f"d-{n}", resource_version="1", kind="Deployment",
                                name=f"app-{n}", namespace=namespace))
        store.upsert(ObjectInfo(
            uid=f"r-{n}", resource_version="1", kind="ReplicaSet", name=f"app-{n}-5d4f",
            namespace=namespace, owner_references=[{"apiVersion": "apps/v1", "kind": "Deployment",
                                                    "name": f"app-{n}", "uid": f"d-{n}",
                                                    "controller": True}]))
        owners = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{n}-5d4f",
                   "uid": f"r-{n}", "controller": True}]
    store.upsert(ObjectInfo(uid=uid, resource_version="1", kind=kind, name=str(ref["name"]),
                            namespace=namespace, labels={"app": f"app-{n}", "a.b/c": '"q"'},
                            annotations={"note": "}{"}, owner_references=owners,
                            node="node-1" if kind == "Pod" else None))
    if deleted:
        store.delete(uid, 0.0)


def parsed_lines(enricher: Enricher, bodies: list[bytes]) -> list[bytes]:
    """The lines of the parsed path: parse, enrich, encode (what a parsing receiver does)."""
    encoder = LineEncoder(name="f", layout=None, de_dot=False, cluster_name="c1")
    return [encoder.encode(enricher.enrich(orjson.loads(b)), b) for b in bodies]


def served_lines(enricher: Enricher, bodies: list[bytes], tmp: Path) -> list[bytes]:
    """The lines a file receiver's delivery writes (the served path, parsing what it must)."""
    sink = build_sink(FileSinkConfig(path=str(tmp / "out.jsonl")), name="f", cluster_name="c1")
    delivery = Delivery(sink, router=None, settings=DeliverySettings(), metrics=Metrics(),
                        enricher=enricher)
    rows = [StoredRow(i + 1, f"e{i}", str(i), 0.0, None, "", "", "", "", "", 1, 1, body)
            for i, body in enumerate(bodies)]
    asyncio.run(delivery.prepare(rows))
    payloads, kept, dead = delivery.encode(rows)
    assert not dead and len(kept) == len(rows)
    return payloads


def corpus_events() -> list[Obj]:
    events = []
    for path in corpus_files():
        events += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return events


def test_corpus_events_get_the_bytes_of_the_parsed_path(tmp_path: Path) -> None:
    enricher = synced_enricher()
    events = corpus_events()
    refs = 0
    for n, event in enumerate(events):
        ref = event.get("involvedObject") or event.get("regarding")
        if isinstance(ref, dict) and ref.get("uid") and ref.get("kind") == "Pod":
            cache(enricher, ref, n, deleted=n % 7 == 0)
            refs += 1
    assert refs > 100, "the corpus has Pod events to enrich"
    compact = [orjson.dumps(e) for e in events]
    as_served = [line for path in corpus_files()
                 for line in path.read_bytes().splitlines() if line]  # with spaces: parsed
    for bodies in (compact, as_served):
        assert served_lines(enricher, bodies, tmp_path) == parsed_lines(enricher, bodies)
    spliced = [served_reference(b) for b in compact]
    assert sum(found is not None for found in spliced) > 0.9 * len(compact)
    assert b'"owner":{"kind":"Deployment"' in b"".join(served_lines(enricher, compact, tmp_path))


texts = st.text(alphabet=st.sampled_from('ab{}"\\:, \u00e9\x00'), max_size=12)
extra_keys = st.dictionaries(st.sampled_from(["fieldPath", "labels", "node", "owner", "x"]),
                             texts | st.dictionaries(texts, texts, max_size=2), max_size=3)


@settings(max_examples=200, deadline=None)
@given(extra=extra_keys, section=st.sampled_from(["involvedObject", "regarding", "both"]),
       cached=st.booleans(), deleted=st.booleans(), nested=st.booleans(),
       rv=st.sampled_from(["1", CACHE_RV + "0", "", "x"]), layout=st.sampled_from(["", " "]))
def test_any_reference_gets_the_bytes_of_the_parsed_path(
        tmp_path_factory: Any, extra: Obj, section: str, cached: bool, deleted: bool,
        nested: bool, rv: str, layout: str) -> None:
    enricher = synced_enricher()
    ref: Obj = {"apiVersion": "v1", "kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1",
                "resourceVersion": rv, **extra}
    if cached:
        cache(enricher, ref, 1, deleted=deleted)
    event: Obj = {"kind": "Event", "metadata": {"name": "e", "namespace": "ns"}}
    if section in ("involvedObject", "both"):
        event["involvedObject"] = ref
    if section in ("regarding", "both"):
        event["regarding"] = dict(ref)
    if nested:
        event["note"] = {"involvedObject": {"kind": "Pod"}}
    event["message"] = '"involvedObject":{ in a string'
    body = orjson.dumps(event)
    if layout:
        body = body.replace(b'":{', b'":' + layout.encode() + b"{")
    tmp = tmp_path_factory.mktemp("served")
    assert served_lines(enricher, [body], tmp) == parsed_lines(enricher, [body])


def test_the_reference_is_found_past_braces_and_quotes_in_its_strings() -> None:
    ref = {"kind": "Pod", "fieldPath": 'spec.containers{a}"}{', "uid": "u"}
    body = orjson.dumps({"kind": "Event", "involvedObject": ref, "reason": "x}"})
    found = served_reference(body)
    assert found is not None and found[0] == "involvedObject" and found[2] == ref
    assert body[found[1] - 1:found[1]] == b"{"
    assert served_reference(body.replace(b'"involvedObject":{', b'"involvedObject": {')) is None
    twice = orjson.dumps({"involvedObject": ref, "x": {"involvedObject": {}}})
    assert served_reference(twice) is None


def test_a_longer_key_ending_in_the_reference_key_is_not_taken_for_it() -> None:
    """`"a\\"involvedObject":{` is the tail of the key `a"involvedObject`: the parsed path
    takes `regarding` here, and so must the served one (or leave it to the parse)."""
    ref = {"kind": "Pod", "uid": "u"}
    body = orjson.dumps({"kind": "Event", 'a"involvedObject': {"kind": "Node"}, "regarding": ref})
    assert b'\\"involvedObject":{' in body
    assert served_reference(body) is None
