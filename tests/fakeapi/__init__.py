"""An in-repo fake kube-apiserver for Events (list/watch protocol), for tests and benchmarks.

Usage::

    async with FakeApiServer() as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")
        api.load_corpus()
        ...

Standalone::

    python -m tests.fakeapi --port P --kubeconfig PATH [--corpus] [--burst N] [--rate N]

Why it stays beside the real control plane (tests/realkube): it does on demand, exactly and
in milliseconds, what the real API server cannot be made to do, or only slowly:

- faults inside a stream: a connection cut in the middle of a JSON line, every N events
  (`disconnect_every`: test_pipeline_e2e, test_fakeapi), malformed or truncated lines
  (`inject_raw_line`: test_pipeline_e2e), in-stream 410 `ERROR` storms (`set_gone_mode`:
  test_pipeline_e2e, test_watch_gaps), 429/5xx with Retry-After (`fail_next`:
  test_watch_units, test_fakeapi), 403 switched on and off while running (`forbid`:
  test_namespaced, test_process_http);
- exact control of resourceVersions, compaction and bookmarks (`compact`, `send_bookmark`,
  `store`), which the loss-accounting tests (test_watch_gaps) assert numbers against;
- corpus-sized loads and bursts at rates the 2-core machine's real API server does not
  sustain (`load_corpus`, `--burst`: test_process_signals, test_sink_kafka, test_enrich,
  the receivers' end-to-end tests, bench/), and Leases whose timing a test drives
  (test_leader, test_leader_processes, test_process_fatal);
- the many process tests that need an API server in a second and no Go build (the CLI's,
  history, dead letters, replay, kube-eventer and resmo arguments).

What the real server shows that this one only imitates (TLS and authentication, RBAC, the
conversion between the two event APIs, real controllers and TTL) is tested in tests/realkube.
"""

from tests.fakeapi.faults import RequestRecord
from tests.fakeapi.server import FakeApiServer

__all__ = ["FakeApiServer", "RequestRecord"]
