"""Rebuild the demo's `events.json` from the corpus (maintainers only, not at runtime).

    python -m eventpipe.demo.rebuild_sample tests/corpus [OUT]     (from the repository root)

A separate module from `sample` so `python -m` does not run a module the package already
imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

from eventpipe.demo import sample


def main(argv: list[str]) -> int:
    """Write the sample picked from CORPUS_DIR to OUT (default: beside `sample.py`)."""
    if not argv:
        print("usage: python -m eventpipe.demo.rebuild_sample CORPUS_DIR [OUT]", file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) > 1 else Path(sample.__file__).with_name("events.json")
    events = sample.build(Path(argv[0]))
    out.write_bytes(sample.dump(events))
    print(f"{out}: {len(events)} events, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
