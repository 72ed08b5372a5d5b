"""Real Events for the fake API server: the corpus, and synthetic copies for load tests.

The corpus (tests/corpus/*.jsonl) holds one Event per line, every field kept. A few
uids appear more than once as snapshots of the same Event taken at different times (count
178 -> 490); the server must see those as one object being modified, so `ordered_versions`
hands out each uid's versions oldest first (by their original resourceVersion, then count).
The `*.watch.jsonl` files wrap objects that are already in the plain files, so they are skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from tests.corpus_files import corpus_files
from tests.fakeapi.convert import Obj


def corpus_paths(root: Path | None = None) -> list[Path]:
    """The top-level Event files of the corpus, sorted (watch-wrapper files excluded)."""
    return corpus_files(root)


def read_events(paths: Iterable[Path | str]) -> list[Obj]:
    """Every Event object in `paths`, in file order."""
    out: list[Obj] = []
    for path in paths:
        with open(path, "rb") as fh:
            out.extend(orjson.loads(line) for line in fh if line.strip())
    return out


def _version_key(event: Obj) -> tuple[int, int]:
    rv = str((event.get("metadata") or {}).get("resourceVersion") or "0")
    count = event.get("count") or event.get("deprecatedCount") or 0
    return (int(rv) if rv.isdigit() else 0, int(count))


def ordered_versions(events: list[Obj]) -> list[Obj]:
    """`events` with each repeated uid's versions re-ordered oldest first, positions kept."""
    by_uid: dict[str, list[Obj]] = {}
    for event in events:
        uid = (event.get("metadata") or {}).get("uid")
        if uid:
            by_uid.setdefault(uid, []).append(event)
    queues = {uid: iter(sorted(vs, key=_version_key)) for uid, vs in by_uid.items() if len(vs) > 1}
    out: list[Obj] = []
    for event in events:
        uid = (event.get("metadata") or {}).get("uid")
        queue = queues.get(uid) if uid else None
        out.append(next(queue) if queue is not None else event)
    return out


def synthetic(templates: list[bytes], start: int = 0) -> Iterator[Obj]:
    """Endless fresh Events (new uid and name, no resourceVersion) cycled from `templates`.

    Copies share the template's nested values (only the top level and metadata are new), which
    is safe because the store never mutates an object in place; this keeps a copy at ~1 µs so
    the standalone server can produce tens of thousands of Events/s and still serve them.
    """
    parsed: list[Obj] = [orjson.loads(raw) for raw in templates]
    for i, template in zip(itertools.count(start), itertools.cycle(parsed), strict=False):
        meta = dict(template.get("metadata") or {})
        meta.pop("resourceVersion", None)
        meta["uid"] = f"e7e17000-0000-4000-8000-{i:012x}"  # unique, cheap, uuid-shaped
        meta["name"] = f"{(template.get('involvedObject') or {}).get('name', 'ev')}.{i:x}"
        yield {**template, "metadata": meta}


def templates_from(paths: Iterable[Path | str]) -> list[bytes]:
    """Serialised corpus Events to feed `synthetic` (kept small: first 2,000)."""
    return [orjson.dumps(e) for e in itertools.islice(read_events(paths), 2000)]
