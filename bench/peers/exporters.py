"""The three exporters under test, each started with its default config plus what pointing it
at the bench needs: the control plane's kubeconfig, the bench namespace and a webhook receiver.

The peers' binaries come from `make peers` (scripts/install-peers.sh), in the same cache the
script fills; a peer that is not there is skipped with a note.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.common import free_port

TICKS = os.sysconf("SC_CLK_TCK")
# kube-eventer pushes to its sinks every --frequency (default 30 s); the bench uses its minimum,
# 5 s, so a scenario settles sooner. It changes when kube-eventer sends, not what it keeps.
KUBE_EVENTER_FREQUENCY = "5s"


def peers_cache() -> Path:
    """Where scripts/install-peers.sh puts the binaries (same rule as the script)."""
    if cache := os.environ.get("EVENTPIPE_PEERS_CACHE"):
        return Path(cache)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eventpipe" / "peers"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Exporter:
    """One exporter set up in `folder`; `start`/`stop` may repeat (a restart keeps its state
    directory), and the CPU and peak RSS of every process it ran are summed / maximised."""

    name: str
    folder: Path
    command: list[str]
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process (output to `<folder>/<name>.log`)."""
        with (self.folder / f"{self.name}.log").open("ab") as log:
            self.proc = subprocess.Popen(self.command, cwd=self.folder, stdout=log, stderr=log,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s), after reading the process's CPU time and VmHWM."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            self.cpu_s += _cpu_seconds(proc.pid)
            self.peak_rss_mib = max(self.peak_rss_mib, _hwm_mib(proc.pid))
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        else:
            raise RuntimeError(f"{self.name} exited early ({proc.returncode}); see "
                               f"{self.folder / (self.name + '.log')}")


def _eventpipe(folder: Path, kubeconfig: Path, namespace: str, sink: str) -> list[str]:
    config = {
        "logLevel": "error", "kubeconfig": str(kubeconfig), "namespace": namespace,
        "spool": {"path": str(folder / "spool.db")},
        "http": {"address": "127.0.0.1", "port": free_port()},
        "route": {"routes": [{"match": [{"receiver": "hook"}]}]},
        "receivers": [{"name": "hook", "webhook": {"endpoint": sink}}],
    }
    path = folder / "eventpipe.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [sys.executable, "-m", "eventpipe", "run", "--config", str(path)]


def _resmo(folder: Path, kubeconfig: Path, namespace: str, sink: str) -> list[str]:
    config = {
        "logLevel": "error", "namespace": namespace,
        "route": {"routes": [{"match": [{"receiver": "hook"}]}]},
        "receivers": [{"name": "hook", "webhook": {"endpoint": sink}}],
    }
    path = folder / "resmo.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [str(peers_cache() / "kubernetes-event-exporter"), f"-conf={path}",
            f"-kubeconfig={kubeconfig}", f"-metrics-address=127.0.0.1:{free_port()}"]


def _kube_eventer(folder: Path, kubeconfig: Path, namespace: str, sink: str) -> list[str]:
    return [str(peers_cache() / "kube-eventer"),
            f"--source=kubernetes:https://kubernetes?inClusterConfig=false&auth={kubeconfig}"
            "&useServiceAccount=false",
            f"--sink=webhook:{sink}?level=Normal&method=POST&namespaces={namespace}",
            f"--frequency={KUBE_EVENTER_FREQUENCY}", "--healthz-ip=127.0.0.1",
            f"--healthz-port={free_port()}"]


BUILDERS = {"eventpipe": _eventpipe, "resmo": _resmo, "kube-eventer": _kube_eventer}
BINARIES = {"resmo": "kubernetes-event-exporter", "kube-eventer": "kube-eventer"}


def available() -> tuple[list[str], list[str]]:
    """(exporters that can run, notes on the ones that cannot)."""
    names, notes = ["eventpipe"], []
    for name, binary in BINARIES.items():
        if os.access(peers_cache() / binary, os.X_OK):
            names.append(name)
        else:
            notes.append(f"{name}: no {binary} in {peers_cache()} (run `make peers`)")
    return names, notes


def build(name: str, folder: Path, kubeconfig: Path, namespace: str, sink: str) -> Exporter:
    """The exporter `name` configured in `folder` (created), not started yet."""
    folder.mkdir(parents=True, exist_ok=True)
    return Exporter(name, folder, BUILDERS[name](folder, kubeconfig, namespace, sink))

