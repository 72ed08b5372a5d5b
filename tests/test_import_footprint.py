"""What `eventpipe run` imports: only the receiver types a config uses, and nothing the run does
not need (docs/performance.md, "Where memory goes"). Each check runs in a child interpreter,
since this test process has imported everything already; it asserts modules, not MiB."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from eventpipe.sinks.registry import RECEIVERS
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    REPO,
    child_processes,
    http_get,
    wait_for_exit,
    wait_started,
    wait_until,
    wait_until_async,
    write_config,
)

# On SIGUSR1 the child writes the names of its imported modules to argv[1], then goes on running
# `eventpipe run --config argv[2]` as the command does.
RUN_AND_DUMP = textwrap.dedent("""
    import os, signal, sys

    def dump(signum, frame):
        with open(sys.argv[1] + ".part", "w") as out:
            out.write("\\n".join(sorted(sys.modules)))
        os.replace(sys.argv[1] + ".part", sys.argv[1])

    signal.signal(signal.SIGUSR1, dump)
    from eventpipe.cli import cli
    cli(["run", "--config", sys.argv[2]], prog_name="eventpipe")
""")

NOT_FOR_A_FILE_RECEIVER = {
    "aiokafka", "re2", "eventpipe.leader.elector", "eventpipe.leader.lease", "eventpipe.history",
    "eventpipe.replay", "eventpipe.demo", "eventpipe.layout", "eventpipe.config.kube_eventer",
    "eventpipe.config.reference", "kubernetes_asyncio.client.api.core_v1_api",
    "kubernetes_asyncio.client.api.events_v1_api",
}
"""Modules a run with one file receiver, no route patterns and no leader election never needs."""


def receiver_packages(modules: set[str]) -> set[str]:
    """The receiver packages (`eventpipe.sinks.<name>`) of which anything is imported."""
    packages = {receiver.package for receiver in RECEIVERS}
    return {package for package in packages
            if any(m == package or m.startswith(package + ".") for m in modules)}


def modules_after(script: str) -> tuple[set[str], str]:
    """Run `script` in a fresh interpreter; (its imported modules, what else it printed)."""
    code = script + "\nimport sys\nprint('\\n'.join(['--modules--', *sys.modules]))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    before, _, modules = result.stdout.partition("--modules--\n")
    return set(modules.split()), before


async def test_a_run_with_a_file_receiver_imports_no_other_receiver(
        api: FakeApiServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, kubeconfig=tmp_path / "kubeconfig")
    dumped, log = tmp_path / "modules.txt", tmp_path / "eventpipe.log"
    async with child_processes() as procs:
        with log.open("ab") as handle:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", RUN_AND_DUMP, str(dumped), str(config),
                stdout=handle, stderr=handle, cwd=str(REPO),
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        port = await wait_started(proc, log)

        async def ready() -> bool:
            return (await http_get(port, "/readyz"))[0] == 200
        await wait_until_async(ready, what="/readyz 200")
        proc.send_signal(signal.SIGUSR1)
        await wait_until(dumped.exists, what="the module list")
        proc.send_signal(signal.SIGTERM)
        assert await wait_for_exit(proc, within=30) == 0
    modules = set(dumped.read_text().split())
    assert "eventpipe.app" in modules and "eventpipe.sinks.file.sink" in modules
    assert receiver_packages(modules) == {"eventpipe.sinks.file"}
    assert modules & NOT_FOR_A_FILE_RECEIVER == set()


def test_loading_a_config_imports_the_models_of_its_receiver_types_only() -> None:
    modules, _ = modules_after(textwrap.dedent("""
        from eventpipe.config import load_config_text
        load_config_text('''
        receivers:
          - {name: f, file: {path: /tmp/x}}
          - {name: l, loki: {url: 'http://127.0.0.1:3100'}}
        ''')
    """))
    assert receiver_packages(modules) == {"eventpipe.sinks.file", "eventpipe.sinks.loki"}


def test_an_unknown_receiver_key_names_every_type_without_importing_them() -> None:
    modules, printed = modules_after(textwrap.dedent("""
        from eventpipe.config import ConfigError, load_config_text
        try:
            load_config_text('receivers: [{name: x, fiel: {path: /tmp/x}}]')
        except ConfigError as exc:
            print(exc)
    """))
    assert "unknown key 'fiel': not a receiver type" in printed
    assert ", ".join(receiver.key for receiver in RECEIVERS) in printed
    assert receiver_packages(modules) == set()


def test_a_receiver_key_no_other_receiver_uses_is_still_one_receiver_type() -> None:
    # `loki` is valid: the second key is what is wrong, as with every type's model loaded.
    modules, printed = modules_after(textwrap.dedent("""
        from eventpipe.config import ConfigError, load_config_text
        try:
            load_config_text('''
            receivers:
              - {name: x, file: {path: /tmp/x}, loki: {url: 'http://127.0.0.1:3100'}}
            ''')
        except ConfigError as exc:
            print(exc)
    """))
    assert "has 2 receiver types (file, loki); a receiver takes exactly one" in printed
    assert receiver_packages(modules) <= {"eventpipe.sinks.file", "eventpipe.sinks.loki"}
