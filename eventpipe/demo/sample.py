"""The demo's bundled Events: a few hundred real Events, loaded, and rebuilt from the corpus.

`events.json` beside this module holds Events picked from the repository's corpus of real
captures (`tests/corpus`), every field exactly as captured; `SOURCES.md` says where each came
from. Only sources under Apache-2.0 or MIT are used, and only core/v1 objects (the simulated
cluster serves the core API). The picking is deterministic (see `pick`), so
``python -m eventpipe.demo.rebuild_sample tests/corpus`` (from a checkout) rebuilds the same file.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

Event = dict[str, Any]

LICENSED_SOURCES = {
    "01_perfkitbenchmarker-gke.jsonl": "Apache-2.0",
    "02_kspan-fixtures.jsonl": "Apache-2.0",
    "03_must-gather-clean-aws.jsonl": "Apache-2.0",
    "07_replicatedhq-troubleshoot.jsonl": "Apache-2.0",
    "08_k9s-render-testdata.jsonl": "Apache-2.0",
    "11_nuvoloso-kontroller.jsonl": "Apache-2.0",
    "12_replicatedhq-sbctl.jsonl": "Apache-2.0",
}
"""Corpus files the sample may use, with their licence (from the corpus SOURCES.md)."""

QUOTAS = {"backoff": 30, "scheduling": 30, "node": 40, "warning": 50, "normal": 150}
"""How many Events of each category the sample holds (fewer if the corpus has fewer)."""

_MAX_LINE = 4000  # bytes; keeps the file compact (the corpus has 10 kB messages)


def category(event: Event) -> str:
    """The scenario role of an Event: backoff, scheduling, node, warning or normal."""
    reason = event.get("reason")
    if reason == "BackOff":
        return "backoff"
    if reason == "FailedScheduling":
        return "scheduling"
    if (event.get("involvedObject") or {}).get("kind") == "Node":
        return "node"
    return "warning" if event.get("type") == "Warning" else "normal"


def load_sample() -> list[Event]:
    """The bundled Events, in file order."""
    text = resources.files(__package__).joinpath("events.json").read_bytes()
    events: list[Event] = orjson.loads(text)
    return events


def pick(events: Iterable[Event]) -> list[Event]:
    """Choose the sample from candidate Events: per category, evenly spaced, up to its quota."""
    by_category: dict[str, list[Event]] = {name: [] for name in QUOTAS}
    for event in events:
        usable = (event.get("apiVersion") == "v1" and event.get("kind") == "Event"
                  and (event.get("metadata") or {}).get("uid") and event.get("involvedObject")
                  and len(orjson.dumps(event)) <= _MAX_LINE)
        if usable:
            by_category[category(event)].append(event)
    chosen: list[Event] = []
    for name, quota in QUOTAS.items():
        # Half for variety (every reason), half as the corpus has them (Pulled, Created and
        # Started are common in a real cluster, so they should be common here too).
        pool = by_category[name]
        varied = _spread(pool, (quota + 1) // 2)
        taken = {id(e) for e in varied}
        rest = [e for e in pool if id(e) not in taken]
        n = min(quota - len(varied), len(rest))
        chosen += varied + [rest[i * len(rest) // n] for i in range(n)]
    return chosen


def _spread(pool: list[Event], n: int) -> list[Event]:
    """Up to `n` of `pool`, round-robin over reasons (variety first), each reason's Events
    evenly spaced through the corpus."""
    by_reason: dict[str, list[Event]] = {}
    for event in pool:
        by_reason.setdefault(str(event.get("reason")), []).append(event)
    takes = dict.fromkeys(by_reason, 0)
    left = min(n, len(pool))
    while left:
        for reason in by_reason:
            if left and takes[reason] < len(by_reason[reason]):
                takes[reason] += 1
                left -= 1
    return [events[i * len(events) // takes[reason]]
            for reason, events in by_reason.items() for i in range(takes[reason])]


def build(corpus: Path) -> list[Event]:
    """Read the licensed corpus files in name order and pick the sample."""
    events: list[Event] = []
    for name in sorted(LICENSED_SOURCES):
        with open(corpus / name, "rb") as fh:
            events.extend(orjson.loads(line) for line in fh if line.strip())
    return pick(events)


def dump(events: list[Event]) -> bytes:
    """The file format: a JSON array with one Event per line (diffable, still plain JSON)."""
    return b"[\n" + b",\n".join(orjson.dumps(e) for e in events) + b"\n]\n"
