"""`eventpipe replay` as a real command on a spool a real pipeline filled: a time or seq range
goes to the one receiver named and nowhere else, and no cursor moves."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eventpipe.spool import Spool
from tests.fakeapi import FakeApiServer
from tests.pipeline_harness import (
    k8s_event,
    read_lines,
    run_cli,
    running,
    versions,
    wait_until,
    write_config,
)


async def cursors(spool_path: Path) -> dict[str, int]:
    spool = await Spool.open(spool_path)
    try:
        return {name: await spool.cursor(name) for name in ("dump", "other")}
    finally:
        await spool.close()


async def test_replay_ranges_reach_only_the_named_receiver(api: FakeApiServer,
                                                           tmp_path: Path) -> None:
    dump, other = tmp_path / "dump.jsonl", tmp_path / "other.jsonl"
    config = write_config(
        tmp_path, kubeconfig=tmp_path / "kubeconfig",
        receivers=[{"name": "dump", "file": {"path": str(dump)}},
                   {"name": "other", "file": {"path": str(other)}}],
        route={"routes": [{"match": [{"receiver": "dump"}]},
                          {"match": [{"receiver": "other"}]}]})
    async with running(config):
        uid = api.add(k8s_event("r-0"))["metadata"]["uid"]
        for i in range(1, 16):
            api.add(k8s_event(f"r-{i}"))
        for _ in range(4):
            api.bump_count(uid)
        await wait_until(lambda: len(read_lines(dump)) == len(read_lines(other)) == 20,
                         what="20 versions at both receivers")
    first = versions(read_lines(dump))
    assert versions(read_lines(other)) == first
    before = await cursors(tmp_path / "spool.db")
    assert before == {"dump": 20, "other": 20}

    result = await run_cli("replay", "--config", str(config), "--receiver", "dump",
                           "--since", "2h")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == ("replayed to dump: 20 sent, 0 dead-lettered, "
                                     "0 not routed to it")
    assert versions(read_lines(dump)) == first + first, "the range again, in seq order"
    assert versions(read_lines(other)) == first, "other receivers are not touched"
    assert await cursors(tmp_path / "spool.db") == before

    result = await run_cli("replay", "--config", str(config), "--receiver", "dump",
                           "--from-seq", "15")
    assert result.code == 0, result.stderr
    assert result.stdout.strip().startswith("replayed to dump: 6 sent,")
    assert versions(read_lines(dump)) == first + first + first[14:]
    assert versions(read_lines(other)) == first
    assert await cursors(tmp_path / "spool.db") == before

    # A range past the head sends nothing.
    result = await run_cli("replay", "--config", str(config), "--receiver", "other",
                           "--from-seq", "21")
    assert (result.code, result.stdout.strip()) == (
        0, "replayed to other: 0 sent, 0 dead-lettered, 0 not routed to it")

    usage_errors = [
        (["--receiver", "nope", "--since", "2h"], "no receiver named 'nope'"),
        (["--receiver", "dump"], "give exactly one of"),
        (["--receiver", "dump", "--since", "2h", "--from-seq", "1"], "give exactly one of"),
        (["--receiver", "dump", "--since", "soon"], "--since")]
    results = await asyncio.gather(*(run_cli("replay", "--config", str(config), *args)
                                     for args, _ in usage_errors))
    for (args, message), result in zip(usage_errors, results, strict=True):
        assert result.code == 2, (args, result)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert len(read_lines(dump)) == 46
    assert await cursors(tmp_path / "spool.db") == before
