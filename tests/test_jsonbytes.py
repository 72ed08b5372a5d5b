"""Serialised JSON that is held is stored right-sized (eventpipe.core.jsonbytes)."""

from __future__ import annotations

import tracemalloc

import orjson

from eventpipe.core.jsonbytes import dumps_kept
from eventpipe.enrich.apply import EnrichedEvent, ObjectInfo, apply
from eventpipe.sinks.encoding import LineEncoder

EVENT = {"metadata": {"uid": "u", "resourceVersion": "1", "name": "n", "namespace": "ns"},
         "reason": "BackOff", "message": "x" * 700, "count": 3}


def allocated_per_result(make: object, n: int = 200) -> float:
    """Bytes traced per result of `make()` kept alive."""
    assert callable(make)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(n)]
        return (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()


def test_dumps_kept_is_the_same_json_in_an_object_of_its_size() -> None:
    assert dumps_kept(EVENT) == orjson.dumps(EVENT)
    assert dumps_kept(EVENT, orjson.OPT_SORT_KEYS) == orjson.dumps(EVENT,
                                                                   option=orjson.OPT_SORT_KEYS)
    size = len(orjson.dumps(EVENT))
    assert allocated_per_result(lambda: dumps_kept(EVENT)) < size + 200


def test_an_encoded_enriched_event_is_held_right_sized() -> None:
    encoder = LineEncoder(name="r", layout=None, cluster_name="", de_dot=False)
    event = EnrichedEvent(EVENT)
    body = orjson.dumps(EVENT)
    line = encoder.encode(event, body)
    assert orjson.loads(line) == EVENT
    assert allocated_per_result(lambda: encoder.encode(event, body)) < len(line) + 200


def test_the_additions_cached_per_object_are_held_right_sized() -> None:
    # Kept on each cached object (ObjectInfo.added_members: the JSON object's members, without
    # its braces) for as long as the cache holds it.
    labels = {"app": "web", "pod-template-hash": "5d4f", "tier": "frontend"}

    def cached_additions() -> bytes | None:
        info = ObjectInfo(uid="p", resource_version="1", kind="Pod", name="p", labels=labels,
                          node="node-1")
        apply({**EVENT, "involvedObject": {"kind": "Pod", "name": "p"}}, "involvedObject",
              {"kind": "Pod", "name": "p"}, info, lambda uid: None, generation=0)
        return info.added_members

    added = cached_additions()
    assert added is not None
    assert orjson.loads(b"{" + added + b"}") == {"labels": labels, "node": "node-1"}
    assert allocated_per_result(cached_additions) < len(added) + 400
