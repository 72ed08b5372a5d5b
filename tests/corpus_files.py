"""Where the corpus of real Kubernetes Events lives (`tests/corpus/`), and its kinds of file.

The corpus is in the repository (its `SOURCES.md` names each upstream source and licence), so
the tests, the fake API server and the benchmark never read anything beside the checkout.

- `NN_*.jsonl`: one Event object per line (`kind: Event`);
- `NN_*.watch.jsonl`: watch wrappers `{"type": ..., "object": Event}` exactly as the source
  gave them; their objects are also in the matching plain file;
- `kindless/*.jsonl`: real Events from raw list responses, without `kind` or `apiVersion`.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus_files(root: Path | None = None) -> list[Path]:
    """The top-level files of single Event objects, sorted (no watch wrappers, no kindless/)."""
    folder = root or CORPUS
    return sorted(p for p in folder.glob("*.jsonl") if not p.name.endswith(".watch.jsonl"))

