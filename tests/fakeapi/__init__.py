"""An in-repo fake kube-apiserver for Events (list/watch protocol), for tests and benchmarks.

It also serves the objects Events are about (tests/fakeapi/objects.py): GET by name for the
enricher's lookups, and LIST/WATCH as PartialObjectMetadata and the Pod Table for its metadata
caches (tests/fakeapi/objectwatch.py). The real control plane tier (tests/realkube) covers the
real behaviour; tests keep this fake for faults a real server cannot show on demand
(docs/kube-tests.md#what-needs-the-fake-api-server-instead).

Usage::

    async with FakeApiServer() as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")
        api.load_corpus()
        ...

Standalone::

    python -m tests.fakeapi --port P --kubeconfig PATH [--corpus] [--burst N] [--rate N]
"""

from tests.fakeapi.faults import RequestRecord
from tests.fakeapi.server import FakeApiServer

__all__ = ["FakeApiServer", "RequestRecord"]
