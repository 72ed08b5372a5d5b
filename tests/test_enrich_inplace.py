"""Enrichment in the stored JSON (eventpipe/enrich/inplace.py) against every corpus Event:
the reference found in the text is the one the parsed event has, and the spliced body parses
to exactly what enriching the parsed event gives, key order included."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from eventpipe.enrich.apply import ObjectInfo, apply, extend, reference
from eventpipe.enrich.inplace import find_reference, splice
from eventpipe.watch.normalize import to_record
from tests.fakeapi.convert import is_events_v1, to_events_v1
from tests.pipeline_harness import corpus_files


def served_bodies() -> list[bytes]:
    """Every corpus Event as its file holds it, plus its events.k8s.io/v1 form."""
    bodies = [line for path in corpus_files() for line in path.read_bytes().splitlines()
              if line.strip()]
    assert len(bodies) > 5000, "corpus not found"
    converted = [orjson.dumps(to_events_v1(event)) for event in map(orjson.loads, bodies[::7])
                 if not is_events_v1(event)]
    return bodies + converted


BODIES = served_bodies()
INFO = ObjectInfo(uid="u", resource_version="1", kind="Pod", name="p",
                  labels={"app": "web", "tier": "a}b\"c"}, annotations={"note": "{x}"},
                  owner_references=[{"kind": "ReplicaSet", "name": "web-1", "uid": "rs",
                                     "controller": True}], node="node-1")


def columns(body: bytes) -> tuple[str, str]:
    """The kind and name columns the spool stores for `body`."""
    record = to_record(orjson.loads(body), body)
    return record[3], record[4]


def test_every_corpus_reference_is_found_as_parsed() -> None:
    missed = 0
    for body in BODIES:
        event = orjson.loads(body)
        expected = reference(event)
        found = find_reference(body, *columns(body))
        if expected is None:
            assert found is None
            continue
        if found is None:
            missed += 1
            continue
        assert (found.section, found.ref) == expected
        assert orjson.loads(body[found.start:found.end]) == expected[1]
    # Every real Event has its reference findable; a miss would only cost a full parse.
    assert missed == 0


def test_spliced_body_equals_the_enriched_parsed_event() -> None:
    for body in BODIES:
        found = find_reference(body, *columns(body))
        if found is None:
            continue
        extended = extend(found.ref, INFO, lambda uid: None)
        assert extended is not None
        event = orjson.loads(body)
        expected = apply(event, found.section, found.ref, INFO, lambda uid: None)
        spliced = splice(body, found, extended)
        assert orjson.dumps(orjson.loads(spliced)) == orjson.dumps(expected)


@pytest.mark.parametrize("body, kind, name", [
    # fieldPath carries braces; escaped quotes inside strings.
    (b'{"involvedObject":{"kind":"Pod","name":"p","fieldPath":"spec.containers{app}"},"x":1}',
     "Pod", "p"),
    (b'{"message":"say \\"hi\\" {","involvedObject": {"kind":"Pod","name":"p"}}', "Pod", "p"),
    (b'{"regarding":{"kind":"Node","name":"n1"},"note":"x"}', "Node", "n1"),
])
def test_references_with_awkward_text_are_found(body: bytes, kind: str, name: str) -> None:
    found = find_reference(body, kind, name)
    assert found is not None
    assert found.ref == reference(orjson.loads(body))[1]  # type: ignore[index]


@pytest.mark.parametrize("body, kind, name", [
    # A key of the same name nested earlier (an annotation) is not the reference.
    (b'{"metadata":{"annotations":{"involvedObject":{"kind":"X","name":"y"}}},'
     b'"involvedObject":{"kind":"Pod","name":"p"}}', "Pod", "p"),
    # A nested object inside the reference: not the flat shape, so no in-place edit.
    (b'{"involvedObject":{"kind":"Pod","name":"p","extra":{"a":1}}}', "Pod", "p"),
    (b'{"reason":"NoReference"}', "", ""),
])
def test_anything_unexpected_falls_back_to_a_full_parse(body: bytes, kind: str,
                                                         name: str) -> None:
    assert find_reference(body, kind, name) is None


def test_extend_adds_only_keys_the_reference_lacks() -> None:
    ref: dict[str, Any] = {"kind": "Pod", "name": "p", "labels": {"served": "yes"}}
    extended = extend(ref, INFO, lambda uid: None)
    assert extended is not None
    assert extended["labels"] == {"served": "yes"}
    assert extended["node"] == "node-1" and extended["owner"] == {"kind": "ReplicaSet",
                                                                  "name": "web-1"}
    assert extend({"kind": "Pod", "name": "p", "deleted": True},
                  ObjectInfo(uid="u", resource_version="1", kind="Pod", name="p", deleted=True),
                  lambda uid: None) is None
