"""How users connect, against the real API server's TLS."""

from __future__ import annotations

from pathlib import Path

from tests.pipeline_harness import (
    child_processes,
    log_records,
    read_lines,
    start_subprocess,
    wait_until,
    write_config,
)
from tests.realkube.controlplane import ControlPlane, Pki, write_kubeconfig


async def test_wrong_ca_is_refused_with_a_clear_message(kube: ControlPlane,
                                                        tmp_path: Path) -> None:
    """A kubeconfig trusting another CA: the real server's certificate is refused, the log
    names the verification failure, and nothing is delivered."""
    other = tmp_path / "other-ca"
    other.mkdir()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.server, Pki(other).ca,
                                  kube.root / "admin.crt", kube.root / "admin.key")
    config = write_config(tmp_path, kubeconfig=kubeconfig)
    log = tmp_path / "eventpipe.log"

    def refusals() -> list[dict[str, object]]:
        return [r for r in log_records(log) if r.get("msg") == "watch failed, retrying"
                and "CERTIFICATE_VERIFY_FAILED" in str(r.get("error"))]

    async with child_processes() as procs:
        procs.append(await start_subprocess(config, log=log))
        await wait_until(lambda: bool(refusals()), within=60, what="a TLS verification error")
        assert procs[0].returncode is None, "a wrong CA is retried, not fatal"
    assert read_lines(tmp_path / "events.jsonl") == []
