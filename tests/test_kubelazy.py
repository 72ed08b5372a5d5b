"""The lazy kubernetes_asyncio import (eventpipe/kube/lazy.py).

Each check runs in a fresh interpreter: whether the lazy packages are used depends on what was
imported first, and pytest's own process has imported kubernetes_asyncio long before.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_pipeline_loads_a_few_generated_modules_not_all() -> None:
    out = run_python("""
        import sys
        import eventpipe.app, eventpipe.enrich.client
        import eventpipe.leader.elector, eventpipe.leader.lease
        print(sum(name.startswith("kubernetes_asyncio.client.models.") for name in sys.modules))
        print(sum(name.startswith("kubernetes_asyncio.client.api.") for name in sys.modules))
    """)
    models, apis = map(int, out.split())
    # An eager import loads ~750 models and ~70 API modules.
    assert models < 20, models
    assert apis < 10, apis


def test_lazy_names_are_the_real_classes_and_deserialise() -> None:
    out = run_python("""
        import asyncio
        import eventpipe
        import kubernetes_asyncio
        from kubernetes_asyncio import client, config
        from kubernetes_asyncio.client.api.coordination_v1_api import CoordinationV1Api
        from kubernetes_asyncio.client.models.v1_lease import V1Lease

        assert client.CoordinationV1Api is CoordinationV1Api
        assert client.V1Lease is V1Lease is client.models.V1Lease
        assert kubernetes_asyncio.client is client
        assert callable(config.load_kube_config)
        assert kubernetes_asyncio.__version__ == client.__version__
        assert "V1Pod" in client.models.__all__

        class Response:
            data = b'{"metadata": {"name": "lock"}, "spec": {"holderIdentity": "me"}}'

        async def main() -> None:
            api = client.ApiClient(client.Configuration())
            lease = api.deserialize(Response(), "V1Lease")
            await api.close()
            print(type(lease).__name__, lease.spec.holder_identity)

        asyncio.run(main())
        try:
            client.NoSuchThing
        except AttributeError as exc:
            print("AttributeError", exc)
    """)
    lines = out.splitlines()
    assert lines[0] == "V1Lease me"
    assert lines[1].startswith("AttributeError") and "NoSuchThing" in lines[1]


def test_an_earlier_eager_import_is_left_alone() -> None:
    out = run_python("""
        import sys
        import kubernetes_asyncio.client
        from eventpipe.kube import lazy as kubelazy
        print(kubelazy.install(), type(sys.modules["kubernetes_asyncio.client"]).__name__)
    """)
    assert out == "False module"
