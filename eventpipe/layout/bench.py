"""Hand-run timing check for the render hot path (not a unit test: timings vary by machine).

    .venv/bin/python -m eventpipe.layout.bench [events.jsonl ...]

Renders a typical 5-field map layout, resmo's `toJson .`, and a string layout over corpus events
and prints renders per second. The target is >= 50k/s for the 5-field layout (render_json).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from eventpipe.layout import compile_layout

_CORPUS = Path(__file__).resolve().parents[2] / "tests" / "corpus"
_LAYOUTS: dict[str, object] = {
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


def main(argv: list[str]) -> None:
    paths = [Path(p) for p in argv] or sorted(_CORPUS.glob("0*.jsonl"))
    events = [orjson.loads(line) for p in paths for line in p.read_bytes().splitlines() if line]
    print(f"{len(events)} events from {len(paths)} files")
    for name, source in _LAYOUTS.items():
        layout = compile_layout(source)
        best = 0.0
        for _ in range(3):
            start = time.perf_counter()
            for event in events:
                layout.render_json(event)
            best = max(best, len(events) / (time.perf_counter() - start))
        print(f"{name:>12}: {best:>10,.0f} renders/s")


if __name__ == "__main__":
    main(sys.argv[1:])
