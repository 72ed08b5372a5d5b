"""An in-repo fake kube-apiserver for Events (list/watch protocol), for tests and benchmarks.

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
