"""Layout rendering: how many events per second the template engine renders, per layout shape.

    python -m bench.run --only layout        (or: python -m bench.layout [events.jsonl ...])

Renders a typical 5-field map layout, resmo's `toJson .`, and a string layout over every corpus
Event (`tests.fakeapi.corpus.corpus_paths`) with `render_json`, the call sinks make per event.
Each run keeps the best of three passes per layout (the least disturbed by other work on the
machine); the target is >= 50,000 renders/s for the 5-field layout.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson

from eventpipe.layout import compile_layout
from tests.fakeapi.corpus import corpus_paths

LAYOUTS: dict[str, object] = {
    "5-field map": {
        "kind": "{{ .InvolvedObject.Kind }}",
        "name": "{{ .InvolvedObject.Name }}",
        "reason": "{{ .Reason }}",
        "message": "{{ .Message }}",
        "createdAt": "{{ .GetTimestampISO8601 }}",
    },
    "toJson .": "{{ toJson . }}",
    "string": "{{ .Namespace }}/{{ .InvolvedObject.Name }}: {{ .Reason | lower }} x{{ .Count }}",
}
"""Layout name -> layout source, as a receiver's `layout:` would give it."""

TARGET_KEY = "5-field map_renders_per_s"
TARGET = 50_000


def load_events(paths: list[Path] | None = None) -> list[dict[str, Any]]:
    """Every Event in `paths` (default: the corpus's Event files)."""
    return [orjson.loads(line) for path in paths or corpus_paths()
            for line in path.read_bytes().splitlines() if line]


def run_once(events: list[dict[str, Any]]) -> dict[str, float]:
    """Renders per second of each layout over `events`, best of three passes."""
    figures: dict[str, float] = {}
    for name, source in LAYOUTS.items():
        layout = compile_layout(source)
        best = 0.0
        for _ in range(3):
            start = time.perf_counter()
            for event in events:
                layout.render_json(event)
            best = max(best, len(events) / (time.perf_counter() - start))
        figures[f"{name}_renders_per_s"] = best
    return figures


def measure(runs: int) -> list[dict[str, float]]:
    """`runs` runs over the corpus; one dict of figures per run."""
    events = load_events()
    return [run_once(events) for _ in range(runs)]


def main(argv: list[str]) -> None:
    """Print renders per second for the given event files (default: the corpus)."""
    paths = [Path(p) for p in argv] or corpus_paths()
    events = load_events(paths)
    print(f"{len(events)} events from {len(paths)} files")
    for key, value in run_once(events).items():
        print(f"{key.removesuffix('_renders_per_s'):>12}: {value:>10,.0f} renders/s")


if __name__ == "__main__":
    main(sys.argv[1:])
